import jwt  # PyJWT, with its "crypto" extra (pip install "pyjwt[crypto]")


def assertion_verifier(jwks_url: str, issuer: str, audience: str):
    """A function that verifies mcpgate's identity assertions and returns their claims."""
    jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300)

    def verify(assertion: str) -> dict:
        if jwt.get_unverified_header(assertion).get("typ") != "mcpgate-identity+jwt":
            raise jwt.InvalidTokenError("not an mcpgate identity assertion")
        key = jwks.get_signing_key_from_jwt(assertion)  # by kid; refetched for a new key
        return jwt.decode(
            assertion,
            key.key,
            algorithms=["ES256", "EdDSA"],
            issuer=issuer,
            audience=audience,
            options={"require": ["iss", "aud", "sub", "exp", "iat", "jti"]},
        )

    return verify
