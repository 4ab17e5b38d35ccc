// geo.holonomy (the transport of v around a closed geodesic polygon), geo.holonomy_angle
// (its rotation angle on a 2-dimensional manifold) and geo.origin print and parse back.
// RUN: geomc %s --passes= | filecheck %s
// RUN: geomc %s --passes= > %t.mlir
// RUN: geomc %t.mlir --passes= | filecheck %s

func.func @loop(%a: !geo.point<poincare<1.0>, 2, f64>, %b: !geo.point<poincare<1.0>, 2, f64>, %c: !geo.point<poincare<1.0>, 2, f64>, %v: !geo.tangent<poincare<1.0>, 2, f64>, %s: !geo.point<sphere, 3, f32>, %w: !geo.tangent<sphere, 3, f32>) -> (!geo.tangent<poincare<1.0>, 2, f64>, !geo.point<euclidean, 1, f64>, !geo.point<poincare<1.0>, 2, f64>, !geo.point<euclidean, 1, f32>) {
  %h = geo.holonomy %v around %a, %b, %c : !geo.tangent<poincare<1.0>, 2, f64> around !geo.point<poincare<1.0>, 2, f64>, !geo.point<poincare<1.0>, 2, f64>, !geo.point<poincare<1.0>, 2, f64> -> !geo.tangent<poincare<1.0>, 2, f64>
  %t = geo.holonomy_angle %v around %a, %b, %c, %a : !geo.tangent<poincare<1.0>, 2, f64> around !geo.point<poincare<1.0>, 2, f64>, !geo.point<poincare<1.0>, 2, f64>, !geo.point<poincare<1.0>, 2, f64>, !geo.point<poincare<1.0>, 2, f64> -> !geo.point<euclidean, 1, f64>
  %o = geo.origin %v : !geo.tangent<poincare<1.0>, 2, f64> -> !geo.point<poincare<1.0>, 2, f64>
  %st = geo.holonomy_angle %w around %s, %s, %s : !geo.tangent<sphere, 3, f32> around !geo.point<sphere, 3, f32>, !geo.point<sphere, 3, f32>, !geo.point<sphere, 3, f32> -> !geo.point<euclidean, 1, f32>
  func.return %h, %t, %o, %st : !geo.tangent<poincare<1.0>, 2, f64>, !geo.point<euclidean, 1, f64>, !geo.point<poincare<1.0>, 2, f64>, !geo.point<euclidean, 1, f32>
}

// CHECK:      %h = geo.holonomy %v around %a, %b, %c : !geo.tangent<poincare<1.0>, 2, f64> around !geo.point<poincare<1.0>, 2, f64>, !geo.point<poincare<1.0>, 2, f64>, !geo.point<poincare<1.0>, 2, f64> -> !geo.tangent<poincare<1.0>, 2, f64>
// CHECK-NEXT: %t = geo.holonomy_angle %v around %a, %b, %c, %a :
// CHECK-NEXT: %o = geo.origin %v : !geo.tangent<poincare<1.0>, 2, f64> -> !geo.point<poincare<1.0>, 2, f64>
// CHECK-NEXT: %st = geo.holonomy_angle %w around %s, %s, %s :
