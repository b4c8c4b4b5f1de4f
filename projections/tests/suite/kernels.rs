//! The kernel campaign matrix.

use assay_projections::testkit::*;
use serde_json::json;

#[test]
fn the_matrix_counts_by_kernel_variant_and_backend() {
    let v = json!({"dtype": "f32", "n": 1024});
    given(vec![
        kernel_completed("c", "vector_add", json!({"n": 1024, "dtype": "f32"}), "cpu", true),
        kernel_completed("c", "vector_add", v.clone(), "cpu", true),
        kernel_completed("c", "vector_add", v.clone(), "cuda", false),
        kernel_faulted("c", "vector_add", v.clone(), "cuda", "CUDA_ERROR_ILLEGAL_ADDRESS"),
        kernel_completed("c", "softmax", json!({"dtype": "f16"}), "cuda", true),
    ])
    .then(|s| {
        let cpu = s.kernels.cell("vector_add", &v, "cpu").unwrap();
        assert_eq!((cpu.passed, cpu.failed, cpu.faulted, cpu.last_max_abs_err), (2, 0, 0, Some(0.0)));
        let cuda = s.kernels.cell("vector_add", &json!({"n": 1024, "dtype": "f32"}), "cuda").unwrap();
        assert_eq!((cuda.passed, cuda.failed, cuda.faulted), (0, 1, 1));
        assert_eq!(cuda.last_max_abs_err, Some(0.5));
        assert_eq!(cuda.last_error.as_deref(), Some("CUDA_ERROR_ILLEGAL_ADDRESS"));
        let t = s.kernels.totals();
        assert_eq!((t.launches, t.passed, t.failed, t.faulted), (5, 3, 1, 1));
        let json = s.state_json(assay_projections::ProjectionName::Kernels).unwrap();
        assert_eq!(json["matrix"]["vector_add"][r#"{"dtype":"f32","n":1024}"#]["cuda"]["faulted"], 1);
    });
}

#[test]
fn a_non_finite_error_is_null() {
    let mut e = kernel_completed("c", "k", json!({}), "cpu", false);
    e.data["max_abs_err"] = serde_json::Value::Null;
    given(vec![e]).then(|s| {
        let cell = s.kernels.cell("k", &json!({}), "cpu").unwrap();
        assert_eq!((cell.failed, cell.last_max_abs_err), (1, None));
    });
}
