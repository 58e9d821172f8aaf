module tcr-assistant.local/images

go 1.22
