//! Finite-difference checks of the JDSH and DCMH losses: autograd's gradient w.r.t. the codes
//! (JDSH) and the batch outputs (DCMH) matches central differences, in double precision.

use jdsh_trainer::methods::dcmh::{self, DcmhParams};
use jdsh_trainer::methods::jdsh::{self, JdshParams};
use tch::{Device, Kind, Tensor};

const OPTS: (Kind, Device) = (Kind::Double, Device::Cpu);

/// Max |autograd - finite difference| over every entry of `x` for the scalar `f(x)`.
fn check(x: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> f64 {
    let xg = x.detach().set_requires_grad(true);
    f(&xg).backward();
    let grad = xg.grad();
    let n = x.numel();
    let flat = x.detach().flatten(0, -1);
    let eps = 1e-6;
    let mut worst: f64 = 0.0;
    for k in 0..n as i64 {
        let v = flat.double_value(&[k]);
        let at = |d: f64| {
            let y = flat.copy();
            let _ = y.get(k).fill_(v + d);
            f(&y.view_as(x)).double_value(&[])
        };
        let fd = (at(eps) - at(-eps)) / (2.0 * eps);
        let ag = grad.flatten(0, -1).double_value(&[k]);
        worst = worst.max((fd - ag).abs() / (1.0 + fd.abs()));
    }
    worst
}

#[test]
fn jdsh_loss_gradient_matches_finite_differences() {
    tch::manual_seed(3);
    let ci = Tensor::randn([5, 4], OPTS).tanh();
    let ct = Tensor::randn([5, 4], OPTS).tanh();
    let feats_i = Tensor::rand([5, 6], OPTS);
    let feats_t = Tensor::rand([5, 3], OPTS);
    let s_i = jdsh::unimodal_similarity(&feats_i, jdsh::CosineMap::Rescaled).to_kind(Kind::Double);
    let s_t = jdsh::unimodal_similarity(&feats_t, jdsh::CosineMap::Rescaled).to_kind(Kind::Double);
    let joint = jdsh::joint_similarity(&s_i, &s_t, jdsh::JointWeights::MIRFLICKR);
    let s = jdsh::target(&joint, Some(&jdsh::Dsdw::paper_mirflickr()), 1.4);
    let p = JdshParams::default();
    let err_i = check(&ci, |x| jdsh::loss(x, &ct, &s, &p).total);
    let err_t = check(&ct, |x| jdsh::loss(&ci, x, &s, &p).total);
    assert!(err_i < 1e-6 && err_t < 1e-6, "{err_i} {err_t}");
    // Through the scaled tanh as well.
    let h = Tensor::randn([5, 4], OPTS);
    let err_h = check(&h, |x| jdsh::loss(&(x * 2.0).tanh(), &ct, &s, &p).total);
    assert!(err_h < 1e-6, "{err_h}");
}

#[test]
fn dcmh_loss_gradient_matches_finite_differences() {
    tch::manual_seed(4);
    let out = Tensor::randn([3, 4], OPTS);
    let other = Tensor::randn([7, 4], OPTS);
    let labels_b = Tensor::from_slice(&[1.0f64, 0.0, 0.0, 1.0, 1.0, 1.0]).view([3, 2]);
    let labels = Tensor::rand([7, 2], OPTS).gt(0.5).to_kind(Kind::Double);
    let s_b = dcmh::label_similarity(&labels_b, &labels);
    let b = dcmh::binary_codes(&Tensor::randn([3, 4], OPTS), &Tensor::zeros([3, 4], OPTS));
    let rest = Tensor::randn([4], OPTS);
    for normalize_by_pairs in [false, true] {
        let p = DcmhParams { normalize_by_pairs, ..Default::default() };
        let err = check(&out, |x| dcmh::batch_loss(x, &other, &s_b, &b, &rest, &p).total);
        assert!(err < 1e-6, "{err}");
    }
}
