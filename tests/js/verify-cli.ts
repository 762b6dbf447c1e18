// Runs the README's check (mcpgate-assertion.ts) on one assertion, for the tests:
// arguments JWKS URL, issuer, audience, assertion; prints {"valid": true, "claims": …} or
// {"valid": false, "error": …}.
import { assertionVerifier } from "./mcpgate-assertion.ts";

const [jwksUrl, issuer, audience, assertion] = process.argv.slice(2);
try {
  const claims = await assertionVerifier(jwksUrl, issuer, audience)(assertion);
  console.log(JSON.stringify({ valid: true, claims }));
} catch (e) {
  console.log(JSON.stringify({ valid: false, error: String((e as Error).message ?? e) }));
}
