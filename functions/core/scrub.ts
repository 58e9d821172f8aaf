/**
 * Last line of defence for error messages that reach logs, audit and status: removes anything shaped like
 * a credential (JSON password/token/auth values, also when the JSON is quoted inside a message, Authorization
 * headers, long base64 runs such as a .dockerconfigjson). Our own messages never include credentials.
 */
const JSON_SECRET_FIELD =
  /(\\?"(?:password|token|auth|secretKey|SecretKey|Token|Password)\\?"\s*:\s*)\\?"(?:[^"\\]|\\(?!"))*\\?"/g;

export function scrubMessage(message: string): string {
  return message
    .replace(JSON_SECRET_FIELD, '$1"[redacted]"')
    .replace(/(authorization:\s*)(\S+\s+)?\S+/gi, '$1[redacted]')
    .replace(/[A-Za-z0-9+/]{40,}={0,2}/g, (run) => (looksLikeSecret(run) ? '[redacted]' : run))
    .slice(0, 2000);
}

/**
 * A long run of base64 characters is taken for a credential unless it reads like a Kubernetes name: object
 * names are lower case letters and digits, so a run without upper case, '+', '/' or '=' padding is kept
 * (long CR, Secret and namespace names stay readable), unless it is all hexadecimal (a hex-encoded key).
 */
function looksLikeSecret(run: string): boolean {
  if (/[A-Z+/=]/.test(run)) return true;
  return /^[0-9a-f]+$/.test(run) && /[0-9]/.test(run) && /[a-f]/.test(run);
}
