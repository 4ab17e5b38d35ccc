// !jet.jet needs an order >= 1.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: invalid-jet-type-order.mlir:7:18: error: jet.jet: order must be from 1 to 64, found 0
// CHECK-NOT: Traceback

func.func @f(%j: !jet.jet<0, !geo.point<euclidean, 2, f32>>) {
  func.return
}
