// inline-models: every func.call between models is replaced by the callee's body; the
// callee stays; inlined geo.param ops keep the callee's names (a model called twice
// shares one set of weights); nested calls are inlined bottom-up.
// RUN: geomc %s --passes=inline-models | filecheck %s
// RUN: geomc %s --passes=inline-models | filecheck %s --check-prefix=NOCALL
// With cse after it, the duplicated parameter ops of the twice-called model merge.
// RUN: geomc %s --passes=inline-models,cse | filecheck %s --check-prefix=SHARED

model Enc(x: R[4]) -> R[4] {
  return tanh(linear(x, 4 -> 4))
}

model Twice(x: R[4]) -> R[4] {
  let a = Enc(x)
  return Enc(a)
}

model Outer(x: R[4]) -> R[2] {
  let t = Twice(x)
  return linear(t, 4 -> 2, bias = false)
}

// The callee is kept as it was.
// CHECK-LABEL: func.func @Enc(
// CHECK-SAME:    %[[X:.*]]: !geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32> {
// CHECK-NEXT:  %[[W:.*]] = geo.param "Enc.linear0.weight" init "glorot_uniform" : tensor<4x4xf32>
// CHECK-NEXT:  %[[L:.*]] = geo.linear %[[X]], %[[W]] :
// CHECK-NEXT:  %[[B:.*]] = geo.param "Enc.linear0.bias" init "zeros" : tensor<4xf32>
// CHECK-NEXT:  %[[A:.*]] = geo.bias %[[L]], %[[B]] :
// CHECK-NEXT:  %[[T:.*]] = geo.tanh %[[A]] :
// CHECK-NEXT:  func.return %[[T]] :
// CHECK-NEXT: }

// Two calls: two copies of Enc's body, chained; both copies name Enc's parameters.
// CHECK-LABEL: func.func @Twice(
// CHECK-SAME:    %[[X:.*]]: !geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32> {
// CHECK-NEXT:  %[[W1:.*]] = geo.param "Enc.linear0.weight" init "glorot_uniform" : tensor<4x4xf32>
// CHECK-NEXT:  %[[L1:.*]] = geo.linear %[[X]], %[[W1]] :
// CHECK-NEXT:  %[[B1:.*]] = geo.param "Enc.linear0.bias" init "zeros" : tensor<4xf32>
// CHECK-NEXT:  %[[A1:.*]] = geo.bias %[[L1]], %[[B1]] :
// CHECK-NEXT:  %[[T1:.*]] = geo.tanh %[[A1]] :
// CHECK-NEXT:  %[[W2:.*]] = geo.param "Enc.linear0.weight" init "glorot_uniform" : tensor<4x4xf32>
// CHECK-NEXT:  %[[L2:.*]] = geo.linear %[[T1]], %[[W2]] :
// CHECK-NEXT:  %[[B2:.*]] = geo.param "Enc.linear0.bias" init "zeros" : tensor<4xf32>
// CHECK-NEXT:  %[[A2:.*]] = geo.bias %[[L2]], %[[B2]] :
// CHECK-NEXT:  %[[T2:.*]] = geo.tanh %[[A2]] :
// CHECK-NEXT:  func.return %[[T2]] : !geo.point<euclidean, 4, f32>
// CHECK-NEXT: }

// Nested: Outer calls Twice, which calls Enc twice; Outer's own layer keeps its name.
// CHECK-LABEL: func.func @Outer(
// CHECK-SAME:    %[[X:.*]]: !geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 2, f32> {
// CHECK-NEXT:  %[[W1:.*]] = geo.param "Enc.linear0.weight"
// CHECK-NEXT:  %[[L1:.*]] = geo.linear %[[X]], %[[W1]] :
// CHECK-NEXT:  geo.param "Enc.linear0.bias"
// CHECK-NEXT:  geo.bias %[[L1]],
// CHECK-NEXT:  %[[T1:.*]] = geo.tanh
// CHECK-NEXT:  %[[W2:.*]] = geo.param "Enc.linear0.weight"
// CHECK-NEXT:  geo.linear %[[T1]], %[[W2]] :
// CHECK-NEXT:  geo.param "Enc.linear0.bias"
// CHECK-NEXT:  geo.bias
// CHECK-NEXT:  %[[T2:.*]] = geo.tanh
// CHECK-NEXT:  %[[WO:.*]] = geo.param "Outer.linear0.weight" init "glorot_uniform" : tensor<2x4xf32>
// CHECK-NEXT:  %[[OUT:.*]] = geo.linear %[[T2]], %[[WO]] : !geo.point<euclidean, 4, f32>, tensor<2x4xf32> -> !geo.point<euclidean, 2, f32>
// CHECK-NEXT:  func.return %[[OUT]] : !geo.point<euclidean, 2, f32>
// CHECK-NEXT: }

// NOCALL-NOT: func.call

// SHARED-LABEL: func.func @Twice(
// SHARED-SAME:    %[[X:.*]]: !geo.point<euclidean, 4, f32>)
// SHARED-NEXT:  %[[W:.*]] = geo.param "Enc.linear0.weight"
// SHARED-NEXT:  %[[L1:.*]] = geo.linear %[[X]], %[[W]] :
// SHARED-NEXT:  %[[B:.*]] = geo.param "Enc.linear0.bias"
// SHARED-NEXT:  %[[A1:.*]] = geo.bias %[[L1]], %[[B]] :
// SHARED-NEXT:  %[[T1:.*]] = geo.tanh %[[A1]] :
// SHARED-NEXT:  %[[L2:.*]] = geo.linear %[[T1]], %[[W]] :
// SHARED-NEXT:  %[[A2:.*]] = geo.bias %[[L2]], %[[B]] :
// SHARED-NEXT:  %[[T2:.*]] = geo.tanh %[[A2]] :
// SHARED-NEXT:  func.return %[[T2]] :
// SHARED-NEXT: }
// SHARED-LABEL: func.func @Outer(
// SHARED-COUNT-2: geo.param "Enc.linear0.
// SHARED-NOT:     geo.param "Enc.
// SHARED:         geo.param "Outer.linear0.weight"
