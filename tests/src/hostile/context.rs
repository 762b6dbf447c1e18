//! The context the cases need, obtained through the real flow (a client, codes, tokens,
//! consent forms and cookies), and the test's own sealer and IdP signer.

use super::*;

/// A consent page shown and not answered yet.
#[derive(Clone, Debug)]
pub struct ConsentForm {
    pub txn: String,
    pub csrf: String,
    /// The CSRF cookie set with the page: (name, value).
    pub csrf_cookie: (String, String),
}

/// A consent approved; the browser was sent to the IdP and has not come back.
#[derive(Clone, Debug)]
pub struct Approved {
    /// The sealed `state` sent to the IdP.
    pub state: String,
    /// The browser-binding cookie: (name, value).
    pub binding_cookie: (String, String),
}

/// The proxy's own sealing, done by the test with the proxy's key (the harness's
/// `JWT_SIGNING_KEY`, through `mcpgate-filter`): a value the proxy sealed is opened and sealed
/// again with an expiry in the past, or under a key the proxy no longer holds (one rotated out
/// of `previous_jwt_signing_keys`). Values that only expire with time can so be tested expired
/// without moving the proxy's clock.
pub struct ProxySealer {
    current: KeyRing,
    retired: KeyRing,
    /// The proxy's own key, bound to another deployment (another gateway sharing the secret).
    elsewhere: KeyRing,
}

impl fmt::Debug for ProxySealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProxySealer")
    }
}

impl ProxySealer {
    /// The sealer of the proxy at `base_url` (its issuer; its resource is `base_url/mcp`):
    /// sealed values are bound to the deployment.
    pub fn new(signing_key: &str, base_url: &str) -> anyhow::Result<Self> {
        let ring = |secret: &str, base: &str| {
            KeyRing::new(&[Secret::new(secret.to_owned())], SigningAlgorithm::Hs256)
                .map(|r| r.bound_to(base, &format!("{base}/mcp")))
                .context("cannot derive the proxy's keys")
        };
        Ok(Self {
            current: ring(signing_key, base_url)?,
            retired: ring(
                "e2e-retired-signing-key-0123456789abcdef0123456789",
                base_url,
            )?,
            elsewhere: ring(signing_key, "https://other-gateway.example")?,
        })
    }

    /// `sealed` (a value the proxy sealed as `kind`), sealed again with the same content.
    pub fn reseal(&self, kind: SealKind, sealed: &str, how: Reseal) -> anyhow::Result<String> {
        let content: Value = seal::unseal(&self.current, kind, sealed, 0)
            .map_err(|e| anyhow::anyhow!("cannot open the proxy's {kind:?}: {e:?}"))?;
        let now = crate::scenarios::now();
        let (ring, exp) = match how {
            Reseal::Fresh => (&self.current, now + 600),
            Reseal::Expired => (&self.current, now - 60),
            Reseal::RetiredKey => (&self.retired, now + 600),
            Reseal::OtherDeployment => (&self.elsewhere, now + 600),
        };
        seal::seal(ring, kind, &content, exp, &mut OsRandom::default())
            .with_context(|| format!("cannot seal a {kind:?}"))
    }
}

/// How [`ProxySealer::reseal`] seals again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reseal {
    /// With the proxy's current key, valid for ten minutes (the control: accepted).
    Fresh,
    /// With the proxy's current key, expired a minute ago.
    Expired,
    /// Valid for ten minutes, under a key the proxy no longer holds.
    RetiredKey,
    /// Valid for ten minutes, with the proxy's current key, but for another deployment (a
    /// gateway at another base URL sharing the same secret).
    OtherDeployment,
}

/// The IdP's signing key (the emulator's active key), to hand-build validly signed tokens.
#[derive(Clone)]
pub struct IdpSigner {
    key: SigningKey<Sha256>,
    pub kid: String,
    /// The public key as the JWKS publishes it.
    pub jwk: Value,
    /// The public key as SPKI PEM (what algorithm-confusion attacks use as an HMAC secret).
    pub public_pem: String,
}

impl fmt::Debug for IdpSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdpSigner").field("kid", &self.kid).finish()
    }
}

impl IdpSigner {
    /// The emulator's key whose kid is `kid`.
    pub fn of(idp: &EmulatorHandle, kid: &str) -> anyhow::Result<Self> {
        for pem in idp.config().signing_keys_pem()? {
            let key = rsa::PrivateKey::from_pkcs8_pem(&pem)
                .map_err(|e| anyhow::anyhow!("emulator key: {e}"))?;
            let public = key.to_public_key();
            let n = URL_SAFE_NO_PAD.encode(public.n_bytes());
            // The emulator's kids: base64 of SHA-256 of the modulus (as base64url text).
            let key_kid = STANDARD.encode(Sha256::digest(n.as_bytes()));
            if key_kid != kid {
                continue;
            }
            let der = public
                .to_public_key_der()
                .map_err(|e| anyhow::anyhow!("public key: {e}"))?;
            let body = STANDARD.encode(der.as_bytes());
            let lines: Vec<&str> = body
                .as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).unwrap_or(""))
                .collect();
            let public_pem = format!(
                "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
                lines.join("\n")
            );
            return Ok(Self {
                key: SigningKey::<Sha256>::new(key),
                kid: kid.to_owned(),
                jwk: json!({"alg": "RS256", "e": URL_SAFE_NO_PAD.encode(public.e_bytes()),
                            "kid": kid, "kty": "RSA", "n": n, "use": "sig"}),
                public_pem,
            });
        }
        bail!("no emulator key with kid {kid}")
    }

    /// A compact JWS over these exact header and claims bytes, signed RS256.
    pub fn rs256(&self, header: &[u8], claims: &[u8]) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let sig: Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64(&sig.to_bytes()))
    }

    /// RS256 with the standard header `{"kid":…,"alg":"RS256"}`.
    pub fn rs256_claims(&self, claims: &str) -> String {
        let header = json!({"kid": self.kid, "alg": "RS256"}).to_string();
        self.rs256(header.as_bytes(), claims.as_bytes())
    }
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// A compact JWS with an HS256 signature made with `secret`.
pub fn hs256(header: &str, claims: &str, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let sig = hmac_sha256(secret, input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// Everything the cases need, obtained through the real flow against one proxy.
pub struct HostileContext<'a> {
    pub base_url: String,
    pub platform: Platform,
    /// The emulator behind the proxy (mints IdP tokens; the retired-key check rotates its keys).
    pub idp: &'a EmulatorHandle,
    /// A registered client with [`REDIRECT_URI`], and another one.
    pub client_id: String,
    pub other_client_id: String,
    /// An authorization code of `client_id`, not redeemed, and its PKCE verifier.
    pub code: String,
    pub verifier: String,
    /// A code already redeemed (replay), and its verifier.
    pub spent_code: String,
    pub spent_verifier: String,
    /// alice's access token from the proxy, and a live refresh token of `client_id`.
    pub access_token: String,
    pub refresh_token: String,
    /// A refresh token already rotated out (its grant is not used elsewhere).
    pub spent_refresh_token: String,
    /// A `client_credentials` token of `m2m-client` (accepted on /mcp).
    pub m2m_token: String,
    /// Its claims, a base for hand-built tokens.
    pub m2m_claims: Map<String, Value>,
    pub signer: IdpSigner,
    /// Reseals the proxy's values (expired, or under a retired key).
    pub sealer: ProxySealer,
    /// Two consent pages of `client_id` (two transactions, two browsers).
    pub consent_a: ConsentForm,
    pub consent_b: ConsentForm,
    /// Two approved consents whose callbacks have not happened.
    pub approved_a: Approved,
    pub approved_b: Approved,
    /// alice's `sub` (what `whoami` must see).
    pub alice_sub: String,
}

impl<'a> HostileContext<'a> {
    /// Registers clients and signs alice in (several times) against `base_url`.
    pub async fn build(
        base_url: &str,
        idp: &'a EmulatorHandle,
        platform: Platform,
    ) -> anyhow::Result<Self> {
        let mut j = Journey::register(base_url).await?;
        let other = Journey::register(base_url).await?;

        // Code 1 redeemed (spent), its tokens kept; code 2 left unredeemed.
        let (spent_code, spent_verifier) = j.authorize("alice", "alice-password").await?;
        let tokens = j.redeem(&spent_code, &spent_verifier).await?;
        let (code, verifier) = j.authorize("alice", "alice-password").await?;
        // A grant of its own for refresh reuse (reuse revokes the family).
        let reuse = j.login("alice", "alice-password").await?;
        let spent_refresh_token = reuse.refresh.context("no refresh token")?;
        let (status, body) = j.refresh(&spent_refresh_token).await?;
        anyhow::ensure!(status == 200, "refresh answered {status}: {body}");

        let alice = idp
            .config()
            .user("alice")
            .map(|u| u.sub.clone())
            .context("no alice")?;

        let m2m_token =
            crate::scenarios::client_credentials(idp, "m2m-client", "m2m-client-secret").await;
        let decoded = crate::jwt::decode_unverified(&m2m_token)?;
        let kid = decoded.kid().context("m2m token without kid")?.to_owned();
        let signer = IdpSigner::of(idp, &kid)?;
        // The proxy has the IdP's keys (it fetched them at start); wait until it accepts.
        let authority = authority(base_url);
        let probe = whoami_req(&m2m_token, &[]);
        wait_until(
            Duration::from_secs(20),
            "the m2m token to be accepted",
            || {
                let (a, p) = (authority.clone(), probe.clone());
                async move { send(&a, &p).await.ok().filter(|r| r.status == 200) }
            },
        )
        .await?;

        let consent_a = consent_page(base_url, &j.client_id).await?;
        let consent_b = consent_page(base_url, &j.client_id).await?;
        let approved_a = approve(base_url, &consent_page(base_url, &j.client_id).await?).await?;
        let approved_b = approve(base_url, &consent_page(base_url, &j.client_id).await?).await?;

        Ok(Self {
            base_url: base_url.to_owned(),
            platform,
            idp,
            client_id: j.client_id.clone(),
            other_client_id: other.client_id.clone(),
            code,
            verifier,
            spent_code,
            spent_verifier,
            access_token: tokens.access.clone(),
            refresh_token: tokens.refresh.context("no refresh token")?,
            spent_refresh_token,
            m2m_token,
            m2m_claims: decoded.claims,
            signer,
            sealer: ProxySealer::new(crate::envoy_setup::JWT_SIGNING_KEY, base_url)?,
            consent_a,
            consent_b,
            approved_a,
            approved_b,
            alice_sub: alice,
        })
    }

    /// [`ProxySealer::reseal`] of `value`. A value the test cannot reseal would be refused
    /// anyway, hiding the mistake: this fails loudly instead.
    pub fn resealed(&self, kind: SealKind, value: &str, how: Reseal) -> String {
        match self.sealer.reseal(kind, value, how) {
            Ok(v) => v,
            Err(e) => panic!("{e:#}"),
        }
    }

    /// The m2m claims with `changes` applied (`null` removes), as JSON text.
    pub fn claims_with(&self, changes: &[(&str, Value)]) -> String {
        let mut c = self.m2m_claims.clone();
        for (k, v) in changes {
            if v.is_null() {
                c.remove(*k);
            } else {
                c.insert((*k).to_owned(), v.clone());
            }
        }
        Value::Object(c).to_string()
    }

    /// A validly signed m2m token with `changes` to its claims.
    pub fn m2m_with(&self, changes: &[(&str, Value)]) -> String {
        self.signer.rs256_claims(&self.claims_with(changes))
    }

    /// The query of an authorization request of `client_id`, with `changes` (an empty value
    /// removes the parameter).
    pub fn authorize_target(&self, client_id: &str, changes: &[(&str, &str)]) -> String {
        let challenge = crate::cognito::pkce_pair().challenge;
        let resource = format!("{}/mcp", self.base_url);
        let mut pairs: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT_URI),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", "client-state"),
            ("resource", &resource),
        ];
        for (k, v) in changes {
            pairs.retain(|(pk, _)| pk != k);
            if !v.is_empty() {
                pairs.push((k, v));
            }
        }
        format!("/authorize?{}", form_encode(&pairs))
    }

    /// A token request redeeming `self.code` with `changes` (an empty value removes).
    pub fn code_form(&self, changes: &[(&str, &str)]) -> Req {
        let resource = format!("{}/mcp", self.base_url);
        let mut pairs: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", &self.code),
            ("client_id", &self.client_id),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &self.verifier),
            ("resource", &resource),
        ];
        for (k, v) in changes {
            pairs.retain(|(pk, _)| pk != k);
            if !v.is_empty() {
                pairs.push((k, v));
            }
        }
        Req::form("/token", &pairs)
    }

    /// A refresh request with `token` for `client_id`.
    pub fn refresh_form(&self, token: &str, client_id: &str) -> Req {
        Req::form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", token),
                ("client_id", client_id),
            ],
        )
    }

    /// `POST /consent` of form `f` with `txn`, `csrf` field and cookies given explicitly.
    pub fn consent_req(&self, txn: &str, csrf: &str, cookies: &[(&str, &str)]) -> Req {
        let r = Req::form(
            "/consent",
            &[("txn", txn), ("csrf", csrf), ("action", "approve")],
        );
        if cookies.is_empty() {
            r
        } else {
            r.cookie(cookies)
        }
    }

    /// The callback with `state` and these cookies.
    pub fn callback_req(&self, state: &str, cookies: &[(&str, &str)]) -> Req {
        let r = Req::get(&format!(
            "/auth/callback?{}",
            form_encode(&[("code", "idp-code"), ("state", state)])
        ));
        if cookies.is_empty() {
            r
        } else {
            r.cookie(cookies)
        }
    }
}

/// `GET /authorize` for `client_id` up to the consent page.
pub(crate) async fn consent_page(base: &str, client_id: &str) -> anyhow::Result<ConsentForm> {
    let pkce = pkce_pair();
    let resp = http_client()
        .get(format!("{base}/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT_URI),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
            ("state", "client-state"),
        ])
        .send()
        .await?;
    anyhow::ensure!(resp.status() == 200, "authorize answered {}", resp.status());
    let csrf_cookie = set_cookie(&resp, "csrf").context("no CSRF cookie")?;
    let html = resp.text().await?;
    Ok(ConsentForm {
        txn: form_value(&html, "txn")?,
        csrf: form_value(&html, "csrf")?,
        csrf_cookie,
    })
}

/// Approves a consent form; the browser is sent to the IdP (not followed).
pub(crate) async fn approve(base: &str, f: &ConsentForm) -> anyhow::Result<Approved> {
    let resp = http_client()
        .post(format!("{base}/consent"))
        .header("cookie", format!("{}={}", f.csrf_cookie.0, f.csrf_cookie.1))
        .form(&[
            ("txn", f.txn.as_str()),
            ("csrf", &f.csrf),
            ("action", "approve"),
        ])
        .send()
        .await?;
    anyhow::ensure!(resp.status() == 302, "consent answered {}", resp.status());
    let binding_cookie = set_cookie(&resp, "binding").context("no binding cookie")?;
    let state = query(&location(&resp)?)?
        .get("state")
        .cloned()
        .context("no state")?;
    Ok(Approved {
        state,
        binding_cookie,
    })
}

/// The (name, value) of the `Set-Cookie` whose name contains `part`.
pub(crate) fn set_cookie(resp: &reqwest::Response, part: &str) -> Option<(String, String)> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(k, v)| k.contains(part) && !v.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
}

/// `POST /mcp` `tools/call whoami` with `token` and extra headers.
pub fn whoami_req(token: &str, extra: &[(&str, &str)]) -> Req {
    let mut r = mcp_req(Some(format!("Bearer {token}").as_bytes()));
    for (k, v) in extra {
        r = r.header(k, v);
    }
    r
}

/// `POST /mcp` `tools/call whoami` with this `Authorization` value (none when `None`).
pub fn mcp_req(authorization: Option<&[u8]>) -> Req {
    let r = Req::json(
        "/mcp",
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "whoami", "arguments": {}}}),
    )
    .header("accept", "application/json, text/event-stream");
    match authorization {
        Some(a) => r.header("authorization", a),
        None => r,
    }
}
