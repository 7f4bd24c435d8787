use super::*;
use crate::url::parse;

fn plan(path: &str) -> Result<Plan> {
    Plan::build(&parse(path, None)?)
}

#[test]
fn aliases_and_order_normalise() {
    let a = plan("/resize=w:800,f:crop,a:[top,left]/H").unwrap();
    let b = plan("/resize=align:[top,left],fit:crop,width:800/H").unwrap();
    assert_eq!(a.canonical(), b.canonical());
    assert_eq!(a.canonical(), "resize=align:[top,left],fit:crop,width:800");
}

#[test]
fn cache_flags() {
    assert_eq!(plan("/cache=false/H").unwrap().cache, CachePolicy::Disabled);
    assert_eq!(plan("/cache=expiry:60/H").unwrap().cache, CachePolicy::Expiry(60));
    assert_eq!(plan("/cache=expiry:max/H").unwrap().cache, CachePolicy::Expiry(31_536_000));
    assert_eq!(plan("/cache/H").unwrap().cache, CachePolicy::Default);
}

#[test]
fn bad_options_name_task_and_option() {
    let e = plan("/resize=heigt:10/H").unwrap_err();
    assert_eq!((e.task(), e.option()), (Some("resize"), Some("heigt")));
    let e = plan("/rotate=deg:360/H").unwrap_err();
    assert_eq!(e.option(), Some("deg"));
    let e = plan("/resize=fit:crop/H").unwrap_err();
    assert_eq!(e.task(), Some("resize"));
    assert!(plan("/border=color:%23FF0000/H").is_err());
}

#[test]
fn colours() {
    let p = plan("/border=color:fff,background:Red/H").unwrap();
    let t = &p.tasks[0];
    assert!(matches!(t.get("color"), Some(Param::Color(_, s)) if s == "FFFFFF"));
    assert!(matches!(t.get("background"), Some(Param::Color(c, s)) if s == "red" && c.0 == [255, 0, 0, 255]));
}

#[test]
fn defaults_come_from_the_schema_and_make_one_canonical_form() {
    // every default in the table parses as its own option would
    for spec in schema::TASKS.iter().filter(|s| s.bare) {
        let Some(default) = spec.options.iter().find(|o| o.default.is_some()) else { continue };
        let task = validate(&RawTask { name: spec.name.into(), options: vec![] });
        let task = task.unwrap_or_else(|e| panic!("{}: {e}", spec.name));
        assert!(task.get(default.name).is_some(), "{} lacks {}", spec.name, default.name);
    }
    assert_eq!(plan("/blur/H").unwrap().canonical(), plan("/blur=amount:2/H").unwrap().canonical());
    assert_eq!(plan("/border/H").unwrap().canonical(), "border=background:FFFFFFFF,color:000000FF,width:2");
    let given = plan("/sepia=tone:20/H").unwrap();
    assert_eq!(given.tasks[0].get("tone"), Some(&Param::Int(20)), "a given value is kept");
}
