// cse merges pure ops with equal operands and properties (geo ops, and number-times-vector
// scalings that fold to the same geo.scale); two layers' parameters have different names,
// so their params, and the layers using them, stay apart.
// RUN: geomc %s --passes=cse | filecheck %s

model M(x: R[4]) -> R[4] {
  let a = tanh(x)
  let b = tanh(x)
  let c = linear(a, 4 -> 4) + linear(b, 4 -> 4)
  return c + scale(a, 2.0) + 2 * b
}

// CHECK-LABEL: func.func @M(
// CHECK-SAME:    %[[X:.*]]: !geo.point<euclidean, 4, f32>)
// CHECK-NEXT:  %[[A:.*]] = geo.tanh %[[X]] :
// CHECK-NEXT:  %[[W0:.*]] = geo.param "M.linear0.weight" init "glorot_uniform" : tensor<4x4xf32>
// CHECK-NEXT:  %[[L0:.*]] = geo.linear %[[A]], %[[W0]] :
// CHECK-NEXT:  %[[B0:.*]] = geo.param "M.linear0.bias" init "zeros" : tensor<4xf32>
// CHECK-NEXT:  %[[A0:.*]] = geo.bias %[[L0]], %[[B0]] :
// CHECK-NEXT:  %[[W1:.*]] = geo.param "M.linear1.weight" init "glorot_uniform" : tensor<4x4xf32>
// CHECK-NEXT:  %[[L1:.*]] = geo.linear %[[A]], %[[W1]] :
// CHECK-NEXT:  %[[B1:.*]] = geo.param "M.linear1.bias" init "zeros" : tensor<4xf32>
// CHECK-NEXT:  %[[A1:.*]] = geo.bias %[[L1]], %[[B1]] :
// CHECK-NEXT:  %[[C:.*]] = geo.add %[[A0]], %[[A1]] :
// CHECK-NEXT:  %[[S:.*]] = geo.scale %[[A]] factor 2.0 :
// CHECK-NEXT:  %[[C1:.*]] = geo.add %[[C]], %[[S]] :
// CHECK-NEXT:  %[[C2:.*]] = geo.add %[[C1]], %[[S]] :
// CHECK-NEXT:  func.return %[[C2]] :
// CHECK-NEXT: }
