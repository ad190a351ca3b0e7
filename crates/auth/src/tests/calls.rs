//! Who may call what: roles from tokens and certificates against the API table.

use super::*;
use crate::{PrincipalKind, Role};

#[test]
fn a_reader_can_list_but_not_start() {
    let signer = Signer::rsa1();
    let (authz, _file) = authorizer(&[&signer]);
    let token = signer.bearer(&["default:read"]);
    for api in [
        "ListWorkflowExecutions",
        "DescribeWorkflowExecution",
        "CountWorkflowExecutions",
        "GetWorkflowExecutionHistory",
        "QueryWorkflow",
        "DescribeNamespace",
        "ListSchedules",
    ] {
        let principal = allowed(&authz, &call(api, "default", &token));
        assert_eq!(principal.kind, PrincipalKind::Jwt);
        assert_eq!(principal.name, "alice");
        assert_eq!(principal.role_in("default"), Some(Role::Read));
    }
    for api in [
        "StartWorkflowExecution",
        "PollWorkflowTaskQueue",
        "SignalWorkflowExecution",
    ] {
        let refused = denied(
            &authz,
            &call(api, "default", &token),
            DeniedKind::PermissionDenied,
        );
        assert!(refused.message.contains(api), "{refused}");
    }
}

#[test]
fn a_worker_can_poll_and_answer_but_not_terminate() {
    let signer = Signer::ec1();
    let (authz, _file) = authorizer(&[&signer]);
    let token = signer.bearer(&["default:worker"]);
    for api in [
        "PollWorkflowTaskQueue",
        "PollActivityTaskQueue",
        "PollNexusTaskQueue",
        "RespondWorkflowTaskCompleted",
        "RespondActivityTaskFailed",
        "RecordActivityTaskHeartbeat",
        "RespondQueryTaskCompleted",
        "DescribeNamespace",
        "GetWorkflowExecutionHistory",
    ] {
        allowed(&authz, &call(api, "default", &token));
    }
    for api in [
        "TerminateWorkflowExecution",
        "StartWorkflowExecution",
        "CreateSchedule",
    ] {
        let refused = denied(
            &authz,
            &call(api, "default", &token),
            DeniedKind::PermissionDenied,
        );
        assert!(refused.message.contains("needs role write"), "{refused}");
        assert!(refused.message.contains("holds only worker"), "{refused}");
    }
}

#[test]
fn a_writer_of_one_namespace_is_refused_in_another_by_name() {
    let signer = Signer::rsa1();
    let (authz, _file) = authorizer(&[&signer]);
    let token = signer.bearer(&["ns-a:write"]);
    for api in [
        "StartWorkflowExecution",
        "TerminateWorkflowExecution",
        "PollWorkflowTaskQueue",
    ] {
        allowed(&authz, &call(api, "ns-a", &token));
    }
    let refused = denied(
        &authz,
        &call("StartWorkflowExecution", "ns-b", &token),
        DeniedKind::PermissionDenied,
    );
    assert_eq!(
        refused.message,
        "Request unauthorized: StartWorkflowExecution in namespace \"ns-b\" needs role write \
         there or as a system role; \"alice\" holds none"
    );
    let admin_api = denied(
        &authz,
        &call("UpdateNamespace", "ns-a", &token),
        DeniedKind::PermissionDenied,
    );
    assert!(
        admin_api.message.contains("needs role admin"),
        "{admin_api}"
    );
    let cluster = denied(
        &authz,
        &call("ListNamespaces", "", &token),
        DeniedKind::PermissionDenied,
    );
    assert!(
        cluster.message.contains("needs system role read"),
        "{cluster}"
    );
}

#[test]
fn a_system_admin_may_do_anything() {
    let signer = Signer::rsa1();
    let (authz, _file) = authorizer(&[&signer]);
    for entry in ["system:admin", "temporal-system:admin", "SYSTEM:Admin"] {
        let token = signer.bearer(&[entry]);
        let expected = entry != "SYSTEM:Admin";
        let calls = [
            (Service::Workflow, "StartWorkflowExecution", "any-namespace"),
            (Service::Workflow, "RegisterNamespace", "new-namespace"),
            (Service::Workflow, "ListNamespaces", ""),
            (Service::Workflow, "GetClusterInfo", ""),
            (Service::Operator, "AddSearchAttributes", "default"),
            (Service::Operator, "ListClusters", ""),
            (Service::Operator, "CreateNexusEndpoint", ""),
            (Service::Workflow, "SomeMethodOfTomorrow", "default"),
            (Service::Other, "Forward", ""),
        ];
        for (service, api, namespace) in calls {
            let info = CallInfo {
                service,
                ..call(api, namespace, &token)
            };
            assert_eq!(authz.authorize(&info).is_ok(), expected, "{entry} {api}");
        }
    }
}

#[test]
fn system_roles_below_admin_reach_every_namespace_but_not_admin_apis() {
    let signer = Signer::rsa1();
    let (authz, _file) = authorizer(&[&signer]);
    let token = signer.bearer(&["system:read", "team:admin"]);
    allowed(&authz, &call("ListNamespaces", "", &token));
    allowed(&authz, &call("ListWorkflowExecutions", "elsewhere", &token));
    allowed(&authz, &call("UpdateNamespace", "team", &token));
    denied(
        &authz,
        &call("StartWorkflowExecution", "elsewhere", &token),
        DeniedKind::PermissionDenied,
    );
    // A namespace admin is still no system admin.
    let op = CallInfo {
        service: Service::Operator,
        ..call("ListClusters", "", &token)
    };
    let refused = denied(&authz, &op, DeniedKind::PermissionDenied);
    assert!(refused.message.contains("holds only read"), "{refused}");
    // An API the table does not know needs the system admin role.
    denied(
        &authz,
        &call("SomeMethodOfTomorrow", "team", &token),
        DeniedKind::PermissionDenied,
    );
}

#[test]
fn health_and_system_info_are_open_without_a_token() {
    let signer = Signer::rsa1();
    let (authz, _file) = authorizer(&[&signer]);
    let open = [
        (Service::Health, "Check"),
        (Service::Health, "Watch"),
        (Service::Workflow, "GetSystemInfo"),
    ];
    for (service, api) in open {
        let info = CallInfo {
            service,
            authorization: None,
            ..call(api, "", "")
        };
        let principal = allowed(&authz, &info);
        assert_eq!(principal.kind, PrincipalKind::Anonymous);
        // Credentials are not looked at for them, not even broken ones.
        allowed(
            &authz,
            &CallInfo {
                service,
                ..call(api, "", "Bearer junk")
            },
        );
    }
    let none = CallInfo {
        authorization: None,
        ..call("GetClusterInfo", "", "")
    };
    let refused = denied(&authz, &none, DeniedKind::Unauthenticated);
    assert!(refused.message.contains("no credentials"), "{refused}");
    let empty = call("ListWorkflowExecutions", "default", "");
    denied(&authz, &empty, DeniedKind::Unauthenticated);
}

#[test]
fn nested_claims_with_a_custom_pattern_are_honoured() {
    let signer = Signer::rsa1();
    let file = JwksFile::new(&[&signer]);
    let authz = Authorizer::new(&AuthConfig {
        permissions_claim: "https://chronicle.example/claims.realm.roles".into(),
        permission_pattern: r"^temporal-(?P<role>[a-z]+)@(?P<namespace>[\w-]+)$".into(),
        subject_claim: "user.email".into(),
        ..config(&file)
    })
    .unwrap();
    let token = signer.sign(&json!({
        "exp": now() + 60,
        "user": {"email": "bob@example.com"},
        "https://chronicle.example/claims": {
            "realm": {"roles": ["temporal-write@orders", "temporal-read@billing", "orders:admin", "offline"]}
        },
        "permissions": ["orders:admin"],
    }));
    let token = format!("Bearer {token}");
    let principal = allowed(&authz, &call("StartWorkflowExecution", "orders", &token));
    assert_eq!(principal.name, "bob@example.com");
    allowed(&authz, &call("DescribeSchedule", "billing", &token));
    denied(
        &authz,
        &call("SignalWorkflowExecution", "billing", &token),
        DeniedKind::PermissionDenied,
    );
    // Entries in Temporal's form, and the top-level claim, are not read with this pattern.
    denied(
        &authz,
        &call("UpdateNamespace", "orders", &token),
        DeniedKind::PermissionDenied,
    );
    // The subject is required where the configuration says it is.
    let nameless = format!(
        "Bearer {}",
        signer.sign(&json!({"exp": now() + 60, "sub": "x"}))
    );
    let refused = denied(
        &authz,
        &call("DescribeNamespace", "orders", &nameless),
        DeniedKind::Unauthenticated,
    );
    assert!(refused.message.contains("`user.email`"), "{refused}");
}

#[test]
fn an_mtls_identity_holds_its_configured_roles() {
    let signer = Signer::rsa1();
    let file = JwksFile::new(&[&signer]);
    let mut config = config(&file);
    config.tls_identities.insert(
        "worker.orders.internal".into(),
        vec!["orders:worker".into()],
    );
    config
        .tls_identities
        .insert("ops".into(), vec!["system:admin".into()]);
    let authz = Authorizer::new(&config).unwrap();
    let identities = [
        "CN-not-listed".to_owned(),
        "worker.orders.internal".to_owned(),
    ];
    let by_cert = |api, namespace, authorization| CallInfo {
        authorization,
        peer_identities: &identities,
        ..call(api, namespace, "")
    };
    let principal = allowed(&authz, &by_cert("PollActivityTaskQueue", "orders", None));
    assert_eq!(principal.kind, PrincipalKind::Tls);
    assert_eq!(principal.name, "worker.orders.internal");
    denied(
        &authz,
        &by_cert("StartWorkflowExecution", "orders", None),
        DeniedKind::PermissionDenied,
    );
    denied(
        &authz,
        &by_cert("PollActivityTaskQueue", "billing", None),
        DeniedKind::PermissionDenied,
    );
    // A token sent with the certificate adds its roles; a bad one is refused outright.
    let token = signer.bearer(&["billing:read"]);
    let both = allowed(
        &authz,
        &by_cert("DescribeNamespace", "billing", Some(&token)),
    );
    assert_eq!(
        (both.kind, both.name.as_str()),
        (PrincipalKind::Jwt, "alice")
    );
    allowed(
        &authz,
        &by_cert("PollActivityTaskQueue", "orders", Some(&token)),
    );
    denied(
        &authz,
        &by_cert("PollActivityTaskQueue", "orders", Some("Bearer x")),
        DeniedKind::Unauthenticated,
    );
    let stranger = ["someone".to_owned()];
    let info = CallInfo {
        authorization: None,
        peer_identities: &stranger,
        ..call("ListNamespaces", "", "")
    };
    let refused = denied(&authz, &info, DeniedKind::Unauthenticated);
    assert!(
        refused
            .message
            .contains("(someone) is not in auth.tls_identities"),
        "{refused}"
    );
    let ops = ["ops".to_owned()];
    let info = CallInfo {
        authorization: None,
        peer_identities: &ops,
        ..call("ListNamespaces", "", "")
    };
    allowed(&authz, &info);
}

#[test]
fn unusable_configurations_are_refused() {
    let mut config = AuthConfig {
        enabled: true,
        ..AuthConfig::default()
    };
    config
        .tls_identities
        .insert("w".into(), vec!["orders:wrtie".into()]);
    let err = Authorizer::new(&config).unwrap_err();
    assert!(err.to_string().contains("orders:wrtie"), "{err}");
    let pattern = AuthConfig {
        permission_pattern: "(?P<role>.*)".into(),
        ..AuthConfig::default()
    };
    assert!(Authorizer::new(&pattern).is_err());
    let never = AuthConfig {
        jwks_refresh_secs: 0,
        ..AuthConfig::default()
    };
    assert!(Authorizer::new(&never).is_err());
    let ftp = AuthConfig {
        enabled: true,
        jwks_url: Some("ftp://idp/jwks".into()),
        ..AuthConfig::default()
    };
    assert!(Authorizer::new(&ftp).is_err());
}

#[test]
fn off_allows_everything() {
    let authz = Authorizer::new(&AuthConfig::default()).unwrap();
    assert!(!authz.is_enabled());
    let info = CallInfo {
        authorization: None,
        ..call("DeleteNamespace", "default", "")
    };
    let principal = allowed(&authz, &info);
    assert_eq!(principal.system_role(), Some(Role::Admin));
    // Off, the JWKS file is not read at all.
    let missing = AuthConfig {
        jwks_file: Some("/nonexistent/jwks.json".into()),
        ..AuthConfig::default()
    };
    assert!(Authorizer::new(&missing).is_ok());
    let on = AuthConfig {
        enabled: true,
        ..missing
    };
    assert!(matches!(
        Authorizer::new(&on),
        Err(crate::AuthError::Jwks(_))
    ));
}

#[test]
fn a_principal_is_checked_again_for_other_namespaces() {
    let signer = Signer::rsa1();
    let (authz, _file) = authorizer(&[&signer]);
    let token = signer.bearer(&["orders:worker", "billing:write"]);
    let principal = allowed(
        &authz,
        &call("RespondWorkflowTaskCompleted", "orders", &token),
    );
    assert!(
        principal
            .check(Service::Workflow, "SignalWorkflowExecution", "billing")
            .is_ok()
    );
    let refused = principal
        .check(Service::Workflow, "StartWorkflowExecution", "shipping")
        .unwrap_err();
    assert!(refused.message.contains("\"shipping\""), "{refused}");
}

#[test]
fn the_section_reads_from_toml() {
    let config: AuthConfig = toml::from_str(
        r#"
        enabled = true
        jwks_url = "https://idp.example/.well-known/jwks.json"
        audience = "chronicle"
        permissions_claim = "realm_access.roles"
        [tls_identities]
        "worker-1" = ["default:worker"]
        "#,
    )
    .unwrap();
    assert_eq!(config.audience.as_deref(), Some("chronicle"));
    assert_eq!(config.jwks_refresh_secs, 300);
    assert!(Authorizer::new(&config).is_ok());
    assert!(toml::from_str::<AuthConfig>("audience = 'a'\naudiences = ['b']").is_err());
}
