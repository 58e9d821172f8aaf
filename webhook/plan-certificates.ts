// Pure planning of the webhook's serving certificate: given what the Secret holds and the time, what to
// issue. The CA goes in the MutatingWebhookConfiguration's caBundle; every replica serves the certificate
// from the Secret. Rotation never leaves the API server without a trusted chain:
// - a new CA is added to the bundle next to the old one (kept until it expires);
// - the serving certificate moves to the new CA only once that CA has been in the bundle for
//   `propagationMs` (every API server has seen the new caBundle), unless it has to be replaced right away
//   (missing, expired, wrong names, issuer no longer trusted).

/** A certificate as the planner sees it (parsed by the shell). */
export interface CertView {
  /** SHA-256 fingerprint. */
  id: string;
  notBefore: number;
  notAfter: number;
  /** For the serving certificate: the id of the CA in the bundle that signed it (undefined: none did). */
  issuerId?: string | undefined;
  dnsNames: string[];
  ipAddresses: string[];
}

export interface CertificateState {
  /** The trusted bundle (`ca.crt`), newest first. */
  cas: CertView[];
  /** Which CA of the bundle `ca.key` belongs to (undefined: no usable key). */
  caKeyOf?: string | undefined;
  serving?: CertView | undefined;
  /** `tls.key` is the serving certificate's key. */
  servingKeyMatches: boolean;
}

export interface CertificatePolicy {
  caValidityMs: number;
  /** A CA with less than this left is replaced (its successor joins the bundle). */
  caRenewBeforeMs: number;
  servingValidityMs: number;
  servingRenewBeforeMs: number;
  /** How long a new CA must have been in the bundle before certificates it signs are served. */
  propagationMs: number;
  /** Certificates start this long before they are issued (clocks of API servers that run behind). */
  backdateMs: number;
  dnsNames: string[];
  ipAddresses: string[];
}

export interface CertificatePlan {
  newCa: boolean;
  newServing: boolean;
  /** CAs of the current bundle to keep (a new CA, if any, goes in front of them). */
  keepCas: string[];
  /** Why, for the log (empty: nothing to do). */
  reasons: string[];
}

const sameSet = (a: string[], b: string[]) =>
  a.length === b.length && [...a].sort().every((v, i) => v === [...b].sort()[i]);

export function planCertificates(
  state: CertificateState,
  now: number,
  policy: CertificatePolicy,
): CertificatePlan {
  const reasons: string[] = [];
  const live = state.cas.filter((ca) => ca.notAfter > now);
  const dropped = state.cas.length - live.length;
  if (dropped > 0) reasons.push(`${dropped} expired CA(s) dropped from the bundle`);

  const signing = live.find((ca) => ca.id === state.caKeyOf);
  let newCa = false;
  if (!signing) {
    newCa = true;
    reasons.push(state.cas.length === 0 ? 'no CA yet' : 'no usable CA key');
  } else if (signing.notAfter - now < policy.caRenewBeforeMs) {
    newCa = true;
    reasons.push('CA near expiry: a successor joins the bundle');
  }

  const serving = state.serving;
  let urgent: string | undefined;
  if (!serving) urgent = 'no serving certificate yet';
  else if (!state.servingKeyMatches) urgent = 'serving key does not match its certificate';
  else if (serving.notAfter <= now) urgent = 'serving certificate expired';
  else if (!sameSet(serving.dnsNames, policy.dnsNames) || !sameSet(serving.ipAddresses, policy.ipAddresses))
    urgent = 'serving certificate names differ from the configured ones';
  else if (!live.some((ca) => ca.id === serving.issuerId))
    urgent = 'serving certificate not signed by a trusted CA';

  let newServing = false;
  if (urgent) {
    newServing = true;
    reasons.push(urgent);
  } else if (serving) {
    // Not urgent: wait until the CA that would sign the next one is known to every API server.
    const propagated =
      !newCa &&
      signing !== undefined &&
      now - (signing.notBefore + policy.backdateMs) >= policy.propagationMs;
    if (serving.notAfter - now < policy.servingRenewBeforeMs && propagated) {
      newServing = true;
      reasons.push('serving certificate near expiry');
    } else if (serving.issuerId !== signing?.id && propagated) {
      newServing = true;
      reasons.push('serving certificate moves to the new CA');
    }
  }
  return { newCa, newServing, keepCas: live.map((ca) => ca.id), reasons };
}

/** Whether a plan changes anything. */
export const isCertificatePlanEmpty = (plan: CertificatePlan, state: CertificateState) =>
  !plan.newCa && !plan.newServing && plan.keepCas.length === state.cas.length;
