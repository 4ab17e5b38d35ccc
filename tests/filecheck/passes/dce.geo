// dce removes ops whose results are unused and that have no side effects: an unused let,
// the layer ops computing it and its geo.param ops, and an unused call of a model (every
// model written in .geo is pure), with what only it used.
// RUN: geomc %s --passes=dce | filecheck %s
// RUN: geomc %s --passes=dce | filecheck %s --check-prefix=DEAD
// RUN: geomc %s --passes=inline-models,dce | filecheck %s --check-prefix=INLINED

model Enc(x: R[4]) -> R[4] {
  return tanh(linear(x, 4 -> 4))
}

model M(x: R[4]) -> R[4] {
  let dead = linear(x, 4 -> 8)
  let dead2 = sin(dead)
  let unused_call = Enc(sin(x))
  let live = linear(x, 4 -> 4, bias = false)
  return cos(live)
}

// CHECK-LABEL: func.func @M(
// CHECK-SAME:    %[[X:.*]]: !geo.point<euclidean, 4, f32>)
// CHECK-NEXT:  %[[W:.*]] = geo.param "M.linear1.weight" init "glorot_uniform" : tensor<4x4xf32>
// CHECK-NEXT:  %[[L:.*]] = geo.linear %[[X]], %[[W]] :
// CHECK-NEXT:  %[[C:.*]] = geo.cos %[[L]] :
// CHECK-NEXT:  func.return %[[C]] :
// CHECK-NEXT: }

// Nothing of the dead lets is left anywhere.
// DEAD-NOT: "M.linear0.
// DEAD-NOT: geo.sin
// DEAD-NOT: func.call

// INLINED-LABEL: func.func @M(
// INLINED-SAME:    %[[X:.*]]: !geo.point<euclidean, 4, f32>)
// INLINED-NEXT:  %[[W:.*]] = geo.param "M.linear1.weight"
// INLINED-NEXT:  %[[L:.*]] = geo.linear %[[X]], %[[W]] :
// INLINED-NEXT:  %[[C:.*]] = geo.cos %[[L]] :
// INLINED-NEXT:  func.return %[[C]] :
// INLINED-NEXT: }
