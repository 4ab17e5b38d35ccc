// dce erases an unused call of a pure model (F, and Outer, pure through its call of F) and
// then what only the call's operands needed (the tanh feeding it); an unused call of a
// declaration (its body, so its effects, are unknown) stays, with its operands.
// RUN: geomc %s --passes=dce | filecheck %s

func.func @F(%x: !geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32> {
  %w = geo.param "F.w" init "glorot_uniform" : tensor<4x4xf32>
  %0 = geo.linear %x, %w : !geo.point<euclidean, 4, f32>, tensor<4x4xf32> -> !geo.point<euclidean, 4, f32>
  func.return %0 : !geo.point<euclidean, 4, f32>
}

func.func @Outer(%x: !geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32> {
  %0 = func.call @F(%x) : (!geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32>
  func.return %0 : !geo.point<euclidean, 4, f32>
}

func.func private @Ext(!geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32>

func.func @G(%x: !geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32> {
  %t = geo.tanh %x : !geo.point<euclidean, 4, f32> -> !geo.point<euclidean, 4, f32>
  %a = func.call @F(%t) : (!geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32>
  %o = func.call @Outer(%x) : (!geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32>
  %s = geo.sin %x : !geo.point<euclidean, 4, f32> -> !geo.point<euclidean, 4, f32>
  %e = func.call @Ext(%s) : (!geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32>
  %c = geo.cos %x : !geo.point<euclidean, 4, f32> -> !geo.point<euclidean, 4, f32>
  func.return %c : !geo.point<euclidean, 4, f32>
}

// CHECK-LABEL: func.func @Outer(
// CHECK-NEXT:  func.call @F(
// CHECK-LABEL: func.func @G(
// CHECK-SAME:    %[[X:.*]]: !geo.point<euclidean, 4, f32>)
// CHECK-NEXT:  %[[S:.*]] = geo.sin %[[X]]
// CHECK-NEXT:  func.call @Ext(%[[S]])
// CHECK-NEXT:  %[[C:.*]] = geo.cos %[[X]]
// CHECK-NEXT:  func.return %[[C]]
// CHECK-NEXT: }
