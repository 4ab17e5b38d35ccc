// !geo.path and the path ops print and parse back unchanged, directly and through the
// generic form; a path on another manifold than a torus is rejected.
// RUN: geomc %s --passes= | filecheck %s
// RUN: geomc %s --passes= --emit=ir-generic -o %t.mlir && geomc %t.mlir --passes= | filecheck %s
// RUN: sed 's/torus<turns>, 2, f64>/sphere, 2, f64>/' %s > %t.bad.mlir && ( geomc %t.bad.mlir --passes=; test $? -eq 1 ) 2>&1 | filecheck %s --check-prefix=BAD
// RUN: sed 's/%w = geo.winding %p : !geo.path<torus<turns>, 2, f64>/%w = geo.winding %x : !geo.point<torus<turns>, 2, f64>/' %s > %t.op.mlir && ( geomc %t.op.mlir --passes=; test $? -eq 1 ) 2>&1 | filecheck %s --check-prefix=OP

// CHECK-LABEL: func.func @paths(
// CHECK-SAME:    %[[P:.*]]: !geo.path<torus<turns>, 2, f64>, %[[X:.*]]: !geo.point<torus<turns>, 2, f64>) -> !geo.point<euclidean, 1, f64> {
// CHECK-NEXT:    %[[D:.*]] = geo.unwrap %[[P]] : !geo.path<torus<turns>, 2, f64> -> !geo.point<euclidean, 2, f64>
// CHECK-NEXT:    %[[W:.*]] = geo.winding %[[P]] : !geo.path<torus<turns>, 2, f64> -> !geo.point<euclidean, 2, f64>
// CHECK-NEXT:    %[[M:.*]] = geo.winding_margin %[[P]] : !geo.path<torus<turns>, 2, f64> -> !geo.point<euclidean, 1, f64>
// CHECK-NEXT:    %[[E:.*]] = geo.endpoint %[[P]] : !geo.path<torus<turns>, 2, f64> -> !geo.point<torus<turns>, 2, f64>
// CHECK-NEXT:    %[[G:.*]] = geo.dist %[[E]], %[[X]] : !geo.point<torus<turns>, 2, f64>, !geo.point<torus<turns>, 2, f64> -> !geo.point<euclidean, 1, f64>
// CHECK-NEXT:    func.return %[[M]] : !geo.point<euclidean, 1, f64>
// CHECK-NEXT:  }
func.func @paths(%p: !geo.path<torus<turns>, 2, f64>, %x: !geo.point<torus<turns>, 2, f64>) -> !geo.point<euclidean, 1, f64> {
  %d = geo.unwrap %p : !geo.path<torus<turns>, 2, f64> -> !geo.point<euclidean, 2, f64>
  %w = geo.winding %p : !geo.path<torus<turns>, 2, f64> -> !geo.point<euclidean, 2, f64>
  %m = geo.winding_margin %p : !geo.path<torus<turns>, 2, f64> -> !geo.point<euclidean, 1, f64>
  %e = geo.endpoint %p : !geo.path<torus<turns>, 2, f64> -> !geo.point<torus<turns>, 2, f64>
  %g = geo.dist %e, %x : !geo.point<torus<turns>, 2, f64>, !geo.point<torus<turns>, 2, f64> -> !geo.point<euclidean, 1, f64>
  func.return %m : !geo.point<euclidean, 1, f64>
}

// BAD: error: {{.*}}geo.path: paths are on torus manifolds, found sphere
// BAD-NOT: Traceback
// OP: error: {{.*}}invalid IR: geo.winding: operand must be a !geo.path on torus, found !geo.point<torus<turns>, 2, f64>
// OP-NOT: Traceback
