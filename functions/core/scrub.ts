/**
 * Last line of defence for error messages that reach logs, audit and status: removes anything shaped like
 * a credential (JSON password/token/auth values, Authorization headers, long base64 runs such as a
 * .dockerconfigjson). Our own messages never include credentials in the first place.
 */
export function scrubMessage(message: string): string {
  return message
    .replace(
      /("(?:password|token|auth|secretKey|SecretKey|Token|Password)"\s*:\s*)"[^"]*"/g,
      '$1"[redacted]"',
    )
    .replace(/(authorization:\s*)(\S+\s+)?\S+/gi, '$1[redacted]')
    .replace(/[A-Za-z0-9+/]{40,}={0,2}/g, '[redacted]')
    .slice(0, 2000);
}
