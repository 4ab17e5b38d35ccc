// A holonomy loop needs 3 points or more; a rotation angle needs a 2-dimensional manifold.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s
// RUN: sed 's/%v around %a, %b :/%v around %a, %b, %a :/; s/!geo.point<poincare<1.0>, 2, f64>, !geo.point<poincare<1.0>, 2, f64> ->/!geo.point<poincare<1.0>, 2, f64>, !geo.point<poincare<1.0>, 2, f64>, !geo.point<poincare<1.0>, 2, f64> ->/; s/poincare<1.0>, 2,/poincare<1.0>, 3,/g' %s > %t.mlir
// RUN: ( geomc %t.mlir --passes=; test $? -eq 1 ) 2>&1 | filecheck %s --check-prefix=DIM

func.func @loop(%a: !geo.point<poincare<1.0>, 2, f64>, %b: !geo.point<poincare<1.0>, 2, f64>, %v: !geo.tangent<poincare<1.0>, 2, f64>) -> !geo.point<euclidean, 1, f64> {
  %t = geo.holonomy_angle %v around %a, %b : !geo.tangent<poincare<1.0>, 2, f64> around !geo.point<poincare<1.0>, 2, f64>, !geo.point<poincare<1.0>, 2, f64> -> !geo.point<euclidean, 1, f64>
  func.return %t : !geo.point<euclidean, 1, f64>
}

// CHECK: error: {{.*}}invalid IR: geo.holonomy_angle: a loop needs at least 3 points, found 2
// CHECK-NOT: Traceback
// DIM: error: {{.*}}invalid IR: geo.holonomy_angle: a rotation angle needs a 2-dimensional manifold, found !geo.point<poincare<1.0>, 3, f64> (dimension 3)
// DIM-NOT: Traceback
