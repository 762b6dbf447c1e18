import { createRemoteJWKSet, jwtVerify, type JWTPayload } from "jose";

/** A function that verifies mcpgate's identity assertions and returns their claims. */
export function assertionVerifier(jwksUrl: string, issuer: string, audience: string) {
  const jwks = createRemoteJWKSet(new URL(jwksUrl)); // cached; refetched for a new kid

  return async (assertion: string): Promise<JWTPayload> => {
    const { payload } = await jwtVerify(assertion, jwks, {
      issuer,
      audience,
      algorithms: ["ES256", "EdDSA"],
      typ: "mcpgate-identity+jwt",
      requiredClaims: ["sub", "exp", "iat", "jti"],
    });
    return payload;
  };
}
