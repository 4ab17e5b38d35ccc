// jet.coeff k >= 2 reads a derivative (the IR's convention). A runtime jet holds normalized
// coefficients, so the emitter scales that one coefficient by k! (not the whole jet with
// taylor.to_derivatives). A jet made by the autodiff reference (derivatives.directional,
// the requests kept by --passes=cse,dce) already holds derivatives: it is read as it is.
// RUN: geomc %s --target=torch | filecheck %s --check-prefix=JET
// RUN: geomc %s --target=jax | filecheck %s --check-prefix=JET
// RUN: geomc %s --passes=cse,dce --target=torch | filecheck %s --check-prefix=REF
// RUN: geomc %s --passes=cse,dce --target=jax | filecheck %s --check-prefix=REF

func.func @F(%x: !geo.point<euclidean, 2, f64>) -> !geo.point<euclidean, 2, f64> {
  %0 = geo.tanh %x : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
  func.return %0 : !geo.point<euclidean, 2, f64>
}

func.func @D(%x: !geo.point<euclidean, 2, f64>, %v: !geo.tangent<euclidean, 2, f64>) -> (!geo.tangent<euclidean, 2, f64>, !geo.tangent<euclidean, 2, f64>, !geo.tangent<euclidean, 2, f64>) {
  %0 = jet.directional @F(%x) along %v wrt 0 order 4 : (!geo.point<euclidean, 2, f64>), !geo.tangent<euclidean, 2, f64> -> !jet.jet<4, !geo.point<euclidean, 2, f64>>
  %1 = jet.coeff %0 index 1 : !jet.jet<4, !geo.point<euclidean, 2, f64>> -> !geo.tangent<euclidean, 2, f64>
  %2 = jet.coeff %0 index 2 : !jet.jet<4, !geo.point<euclidean, 2, f64>> -> !geo.tangent<euclidean, 2, f64>
  %3 = jet.coeff %0 index 4 : !jet.jet<4, !geo.point<euclidean, 2, f64>> -> !geo.tangent<euclidean, 2, f64>
  func.return %1, %2, %3 : !geo.tangent<euclidean, 2, f64>, !geo.tangent<euclidean, 2, f64>, !geo.tangent<euclidean, 2, f64>
}

// JET-LABEL: def D(params, x, v):
// JET:           [[J:v[0-9]+]] = taylor.tanh(
// JET-NEXT:      [[D1:v[0-9]+]] = [[J]][1]
// JET-NEXT:      [[D2:v[0-9]+]] = [[J]][2] * 2.0
// JET-NEXT:      [[D4:v[0-9]+]] = [[J]][4] * 24.0
// JET-NEXT:      return [[D1]], [[D2]], [[D4]]

// REF-LABEL: def D(params, x, v):
// REF:           [[J:v[0-9]+]] = derivatives.directional(F, params, (x,), v, wrt=0, order=4)
// REF-NEXT:      [[D1:v[0-9]+]] = [[J]][1]
// REF-NEXT:      [[D2:v[0-9]+]] = [[J]][2]
// REF-NEXT:      [[D4:v[0-9]+]] = [[J]][4]
// REF-NEXT:      return [[D1]], [[D2]], [[D4]]
