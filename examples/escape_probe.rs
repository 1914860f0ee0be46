fn main() {
    let spec = lossnav::problems::Spec::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/problems/specs/figure1-double-well-infinite.json"
    ))
    .unwrap();
    let gammas: Vec<f64> = (1..=12).map(|i| 0.1 * i as f64).collect();
    let d = lossnav::escape::escape_diagram(&spec, &gammas, &[vec![-0.6, 0.55], vec![-0.3, 0.55]])
        .unwrap();
    for s in &d.switches {
        println!("{:?}", s);
    }
}
