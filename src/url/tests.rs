use super::*;

fn p(path: &str) -> ParsedUrl {
    parse(path, None).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn handle_only() {
    let u = p("/AAAAAAAAAAAAAAAAAAAA");
    assert_eq!(u.source, SourceSpec::handle("AAAAAAAAAAAAAAAAAAAA".into()));
    assert!(u.tasks.is_empty() && u.apikey.is_none());
}

#[test]
fn key_tasks_and_security_anywhere() {
    let (policy, sig) = (
        "eyJleHBpcnkiOjE4OTM0NTYwMDAsImNhbGwiOlsicmVhZCIsImNvbnZlcnQiXX0=",
        "9adad7597e3be7c7fe1a51a47a47dc35127f250840d95a0fc4fc6d29ee42d298",
    );
    let u = p(&format!("/KEY123/resize=w:100,h:50/security=p:{policy},s:{sig}/flip/HANDLE"));
    assert_eq!(u.apikey.as_deref(), Some("KEY123"));
    assert_eq!(u.tasks.len(), 2);
    assert_eq!(u.security, Some(SecurityParams { policy: policy.into(), signature: sig.into() }));
    assert!(parse(&format!("/security=p:{policy},s:zz/HANDLE"), None).is_err(), "a mangled signature is a 400");
    assert!(parse(&format!("/security=p:{policy},s:{sig},s:{sig}/HANDLE"), None).is_err(), "duplicates too");
}

#[test]
fn raw_and_quoted_urls() {
    let u = p("/KEY/resize=width:10/https://example.com/a/b.jpg");
    assert_eq!(u.source, SourceSpec::Url { url: "https://example.com/a/b.jpg".into() });
    let u = p("/KEY/resize=width:10/%22https://example.com/a/b.jpg%22");
    assert_eq!(u.source, SourceSpec::Url { url: "https://example.com/a/b.jpg".into() });
    let u = p("/KEY/https%3A%2F%2Fexample.com%2Fa.jpg");
    assert_eq!(u.source, SourceSpec::Url { url: "https://example.com/a.jpg".into() });
    let u = p("/KEY/resize=width:10/https:%2F%2Fexample.com%2Fa.jpg");
    assert_eq!(u.source, SourceSpec::Url { url: "https://example.com/a.jpg".into() });
}

#[test]
fn query_reattached_to_quoted_url() {
    let u = parse("/KEY/resize=width:10/%22https://h.example/get", Some("id=42&size=large%22")).unwrap();
    assert_eq!(u.source, SourceSpec::Url { url: "https://h.example/get?id=42&size=large".into() });
    assert!(u.query_consumed);
}

#[test]
fn lists_quotes_and_colons() {
    let u = p("/video_convert=preset:mp3,clip_offset:00:00:10,title:%22a,b%22/HANDLE");
    let t = &u.tasks[0];
    assert_eq!(t.options[1].value, Some(Value::scalar("00:00:10")));
    assert_eq!(t.options[2].value, Some(Value::Scalar { text: "a,b".into(), quoted: true }));
    let u = p("/partial_blur=objects:[[1,2,3,4],[5,6,7,8]]/HANDLE");
    assert!(matches!(&u.tasks[0].options[0].value, Some(Value::List(v)) if v.len() == 2));
    let u = p("/crop=d:%5B10%2C20%2C30%2C40%5D/HANDLE");
    assert!(matches!(&u.tasks[0].options[0].value, Some(Value::List(v)) if v.len() == 4));
}

#[test]
fn java_encoded_slashes() {
    let u = p("/resize=width:100%2Fflip/HANDLE");
    assert_eq!(u.tasks.len(), 2);
}

#[test]
fn sources_lists_aliases_b64() {
    let u = p("/zip/[h1,%22src://a/x.jpg%22,https://e.com/y.png]");
    match u.source {
        SourceSpec::List { items } => assert_eq!(items.len(), 3),
        other => panic!("{other:?}"),
    }
    let u = p("/src://myalias/dir/x.jpg");
    assert_eq!(u.source, SourceSpec::Alias { alias: "myalias".into(), path: "dir/x.jpg".into() });
    // [{"name":"flip"}] and "HANDLE"
    let u = p("/b64/W3sibmFtZSI6ImZsaXAifV0=/b64://SEFORExF");
    assert_eq!(u.tasks[0].name, "flip");
    assert_eq!(u.source, SourceSpec::handle("HANDLE".into()));
}

#[test]
fn debug_before_or_after_key() {
    assert!(p("/debug/KEY/flip/HANDLE").debug);
    assert!(p("/KEY/debug/flip/HANDLE").debug);
}

#[test]
fn errors_name_the_problem() {
    let e = parse("/resise=w:100/HANDLE", None).unwrap_err();
    assert_eq!(e.task(), Some("resise"));
    assert!(parse("/resize=w:[1,2/HANDLE", None).is_err());
    assert!(parse("/resize=w:100", None).is_err());
    assert!(parse("/", None).is_err());
    assert!(parse("/resize=w:%FF/HANDLE", None).is_err());
}
