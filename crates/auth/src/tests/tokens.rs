//! Which tokens are taken: signatures, keys, algorithms and registered claims.

use super::*;

const API: &str = "DescribeNamespace";

fn refused_token(authz: &Authorizer, token: &str) -> String {
    let authorization = if token.contains(' ') {
        token.to_owned()
    } else {
        format!("Bearer {token}")
    };
    denied(
        authz,
        &call(API, "default", &authorization),
        DeniedKind::Unauthenticated,
    )
    .message
}

#[test]
fn rs256_and_es256_tokens_are_verified() {
    let (rsa, ec) = (Signer::rsa1(), Signer::ec1());
    let (authz, _file) = authorizer(&[&rsa, &ec]);
    for signer in [&rsa, &ec] {
        allowed(
            &authz,
            &call(API, "default", &signer.bearer(&["default:read"])),
        );
    }
    // The scheme is read in any case, as Temporal reads it.
    let lower = signer_token_lowercase(&rsa);
    allowed(&authz, &call(API, "default", &lower));
}

fn signer_token_lowercase(signer: &Signer) -> String {
    format!("bearer {}", signer.sign(&claims(&["default:read"])))
}

#[test]
fn expired_and_not_yet_valid_tokens_are_refused() {
    let signer = Signer::rsa1();
    let (authz, _file) = authorizer(&[&signer]);
    let expired =
        signer.sign(&json!({"sub": "a", "exp": now() - 120, "permissions": ["default:read"]}));
    assert!(refused_token(&authz, &expired).contains("token has expired"));
    // Within the leeway (60 s by default) it still passes.
    let just =
        signer.sign(&json!({"sub": "a", "exp": now() - 30, "permissions": ["default:read"]}));
    allowed(&authz, &call(API, "default", &format!("Bearer {just}")));
    let early = signer.sign(&json!({"sub": "a", "exp": now() + 600, "nbf": now() + 300}));
    assert!(refused_token(&authz, &early).contains("not valid yet"));
    let started = signer.sign(
        &json!({"sub": "a", "exp": now() + 600, "nbf": now() - 1, "permissions": ["default:read"]}),
    );
    allowed(&authz, &call(API, "default", &format!("Bearer {started}")));
    let forever = signer.sign(&json!({"sub": "a", "permissions": ["default:read"]}));
    assert!(refused_token(&authz, &forever).contains("no `exp` claim"));
    let textual = signer.sign(&json!({"sub": "a", "exp": "tomorrow"}));
    refused_token(&authz, &textual);
}

#[test]
fn the_audience_is_checked_when_configured() {
    let signer = Signer::rsa1();
    let file = JwksFile::new(&[&signer]);
    let token = |aud: Value| {
        let mut claims = claims(&["default:read"]);
        claims["aud"] = aud;
        format!("Bearer {}", signer.sign(&claims))
    };
    // Unconfigured, any audience passes, as in Temporal.
    let open = Authorizer::new(&config(&file)).unwrap();
    allowed(&open, &call(API, "default", &token(json!("someone-else"))));
    let strict = Authorizer::new(&AuthConfig {
        audience: Some("chronicle".into()),
        ..config(&file)
    })
    .unwrap();
    allowed(&strict, &call(API, "default", &token(json!("chronicle"))));
    allowed(
        &strict,
        &call(API, "default", &token(json!(["web", "chronicle"]))),
    );
    let refused = denied(
        &strict,
        &call(API, "default", &token(json!("web"))),
        DeniedKind::Unauthenticated,
    );
    assert!(
        refused.message.contains("does not include \"chronicle\""),
        "{refused}"
    );
    let bare = signer.bearer(&["default:read"]);
    let refused = denied(
        &strict,
        &call(API, "default", &bare),
        DeniedKind::Unauthenticated,
    );
    assert!(refused.message.contains("no `aud` claim"), "{refused}");
}

#[test]
fn the_issuer_is_checked_when_configured() {
    let signer = Signer::rsa1();
    let file = JwksFile::new(&[&signer]);
    let authz = Authorizer::new(&AuthConfig {
        issuer: Some("https://idp.example".into()),
        ..config(&file)
    })
    .unwrap();
    let mut good = claims(&["default:read"]);
    good["iss"] = json!("https://idp.example");
    allowed(
        &authz,
        &call(API, "default", &format!("Bearer {}", signer.sign(&good))),
    );
    good["iss"] = json!("https://evil.example");
    assert!(refused_token(&authz, &signer.sign(&good)).contains("issuer"));
}

#[test]
fn badly_signed_tokens_are_refused() {
    let (rsa1, ec1) = (Signer::rsa1(), Signer::ec1());
    let (authz, _file) = authorizer(&[&rsa1, &ec1]);
    // Another key claiming a trusted key id.
    let forged = Signer::rsa2()
        .with_kid("rsa-1")
        .sign(&claims(&["system:admin"]));
    assert!(refused_token(&authz, &forged).contains("signature does not verify"));
    let forged_ec = Signer::ec2()
        .with_kid("ec-1")
        .sign(&claims(&["system:admin"]));
    assert!(refused_token(&authz, &forged_ec).contains("signature does not verify"));
    // A genuine token whose claims were changed after signing.
    let genuine = rsa1.sign(&claims(&["default:read"]));
    let parts: Vec<&str> = genuine.split('.').collect();
    let other = rsa1.sign(&claims(&["system:admin"]));
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        other.split('.').nth(1).unwrap(),
        parts[2]
    );
    assert!(refused_token(&authz, &tampered).contains("signature does not verify"));
    // An ES256 token naming an RSA key, and an HS256 token keyed by anything.
    let crossed = Signer::ec1()
        .with_kid("rsa-1")
        .sign(&claims(&["default:read"]));
    assert!(refused_token(&authz, &crossed).contains("does not match key"));
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let secret = EncodingKey::from_secret(b"public knowledge").unwrap();
    let hmac = encode(&header, &claims(&["system:admin"]), &secret).unwrap();
    assert!(refused_token(&authz, &hmac).contains("HS256 is not accepted"));
}

#[test]
fn unknown_key_ids_and_missing_ones_are_refused() {
    let (authz, _file) = authorizer(&[&Signer::rsa1()]);
    let stranger = Signer::rsa2().sign(&claims(&["default:read"]));
    assert!(refused_token(&authz, &stranger).contains("unknown key \"rsa-2\""));
    let signer = Signer::rsa1();
    let no_kid = encode(
        &Header::new(Algorithm::RS256),
        &claims(&["default:read"]),
        &signer.key,
    )
    .unwrap();
    assert!(refused_token(&authz, &no_kid).contains("no `kid`"));
}

#[test]
fn malformed_authorization_values_are_refused() {
    let (authz, _file) = authorizer(&[&Signer::rsa1()]);
    for value in [
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Bearer eyJhbGciOiJSUzI1NiJ9.e30",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "eyJhbGciOiJSUzI1NiJ9.e30.sig",
        "Bearer \u{0}\u{1}",
    ] {
        let message = refused_token(&authz, value);
        assert!(
            message.starts_with("Request unauthorized: "),
            "{value}: {message}"
        );
    }
    let message = refused_token(&authz, "Basic dXNlcjpwYXNz");
    assert!(message.contains("not `Bearer <token>`"), "{message}");
}

#[test]
fn a_subject_is_required() {
    let signer = Signer::rsa1();
    let (authz, _file) = authorizer(&[&signer]);
    let anonymous = signer.sign(&json!({"exp": now() + 60, "permissions": ["default:read"]}));
    assert!(refused_token(&authz, &anonymous).contains("`sub`"));
    let numeric =
        signer.sign(&json!({"sub": 42, "exp": now() + 60, "permissions": ["default:read"]}));
    refused_token(&authz, &numeric);
}

#[test]
fn a_token_without_permissions_is_known_but_may_do_nothing() {
    let signer = Signer::rsa1();
    let (authz, _file) = authorizer(&[&signer]);
    let token = format!(
        "Bearer {}",
        signer.sign(&json!({"sub": "carol", "exp": now() + 60}))
    );
    let refused = denied(
        &authz,
        &call(API, "default", &token),
        DeniedKind::PermissionDenied,
    );
    assert!(
        refused.message.contains("\"carol\" holds none"),
        "{refused}"
    );
}

#[test]
fn without_keys_only_certificates_authenticate() {
    let authz = Authorizer::new(&AuthConfig {
        enabled: true,
        ..AuthConfig::default()
    })
    .unwrap();
    let token = Signer::rsa1().bearer(&["default:read"]);
    denied(
        &authz,
        &call(API, "default", &token),
        DeniedKind::Unauthenticated,
    );
}
