// The admission floor in Go (the API server's own language and HTTP stack): a mutating webhook that admits
// without looking, as bench/noop-webhook.mjs does in Node. Built and run by bench/admission-floor.ts.
// Environment: CERT_FILE, KEY_FILE, PORT.
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"os"
	"time"
)

type review struct {
	Request struct {
		UID string `json:"uid"`
	} `json:"request"`
}

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var in review
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, "not JSON", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"apiVersion": "admission.k8s.io/v1",
			"kind":       "AdmissionReview",
			"response":   map[string]any{"uid": in.Request.UID, "allowed": true},
		})
	})
	server := &http.Server{Addr: "127.0.0.1:" + os.Getenv("PORT"), IdleTimeout: 60 * time.Second}
	log.Printf("listening on %s", server.Addr)
	log.Fatal(server.ListenAndServeTLS(os.Getenv("CERT_FILE"), os.Getenv("KEY_FILE")))
}
