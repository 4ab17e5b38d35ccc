// cse merges two calls of the same pure model with the same operands in one block (a model
// whose ops, and whose callees' ops, have no side effects: every .geo model), then the ops
// that become equal through them. A call of a declaration (its body, so its effects, are
// unknown) and calls with different operands stay.
// RUN: geomc %s --passes=cse | filecheck %s

func.func @F(%x: !geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32> {
  %w = geo.param "F.w" init "glorot_uniform" : tensor<4x4xf32>
  %0 = geo.linear %x, %w : !geo.point<euclidean, 4, f32>, tensor<4x4xf32> -> !geo.point<euclidean, 4, f32>
  %1 = geo.tanh %0 : !geo.point<euclidean, 4, f32> -> !geo.point<euclidean, 4, f32>
  func.return %1 : !geo.point<euclidean, 4, f32>
}

// Pure through a call of F.
func.func @Outer(%x: !geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32> {
  %0 = func.call @F(%x) : (!geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32>
  func.return %0 : !geo.point<euclidean, 4, f32>
}

func.func private @Ext(!geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32>

func.func @G(%x: !geo.point<euclidean, 4, f32>, %y: !geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32> {
  %a = func.call @F(%x) : (!geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32>
  %b = func.call @F(%x) : (!geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32>
  %c = func.call @F(%y) : (!geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32>
  %o1 = func.call @Outer(%x) : (!geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32>
  %o2 = func.call @Outer(%x) : (!geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32>
  %e1 = func.call @Ext(%x) : (!geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32>
  %e2 = func.call @Ext(%x) : (!geo.point<euclidean, 4, f32>) -> !geo.point<euclidean, 4, f32>
  %ta = geo.tanh %a : !geo.point<euclidean, 4, f32> -> !geo.point<euclidean, 4, f32>
  %tb = geo.tanh %b : !geo.point<euclidean, 4, f32> -> !geo.point<euclidean, 4, f32>
  %s0 = geo.add %ta, %tb : !geo.point<euclidean, 4, f32>, !geo.point<euclidean, 4, f32> -> !geo.point<euclidean, 4, f32>
  %s1 = geo.add %s0, %c : !geo.point<euclidean, 4, f32>, !geo.point<euclidean, 4, f32> -> !geo.point<euclidean, 4, f32>
  %s2 = geo.add %s1, %o1 : !geo.point<euclidean, 4, f32>, !geo.point<euclidean, 4, f32> -> !geo.point<euclidean, 4, f32>
  %s3 = geo.add %s2, %o2 : !geo.point<euclidean, 4, f32>, !geo.point<euclidean, 4, f32> -> !geo.point<euclidean, 4, f32>
  %s4 = geo.add %s3, %e1 : !geo.point<euclidean, 4, f32>, !geo.point<euclidean, 4, f32> -> !geo.point<euclidean, 4, f32>
  %s5 = geo.add %s4, %e2 : !geo.point<euclidean, 4, f32>, !geo.point<euclidean, 4, f32> -> !geo.point<euclidean, 4, f32>
  func.return %s5 : !geo.point<euclidean, 4, f32>
}

// CHECK-LABEL: func.func @G(
// CHECK-SAME:    %[[X:.*]]: !geo.point<euclidean, 4, f32>, %[[Y:.*]]: !geo.point<euclidean, 4, f32>)
// CHECK-NEXT:  %[[A:.*]] = func.call @F(%[[X]])
// CHECK-NEXT:  %[[C:.*]] = func.call @F(%[[Y]])
// CHECK-NEXT:  %[[O:.*]] = func.call @Outer(%[[X]])
// CHECK-NEXT:  %[[E1:.*]] = func.call @Ext(%[[X]])
// CHECK-NEXT:  %[[E2:.*]] = func.call @Ext(%[[X]])
// CHECK-NEXT:  %[[T:.*]] = geo.tanh %[[A]]
// CHECK-NEXT:  %[[S0:.*]] = geo.add %[[T]], %[[T]]
// CHECK-NEXT:  %[[S1:.*]] = geo.add %[[S0]], %[[C]]
// CHECK-NEXT:  %[[S2:.*]] = geo.add %[[S1]], %[[O]]
// CHECK-NEXT:  %[[S3:.*]] = geo.add %[[S2]], %[[O]]
// CHECK-NEXT:  %[[S4:.*]] = geo.add %[[S3]], %[[E1]]
// CHECK-NEXT:  %[[S5:.*]] = geo.add %[[S4]], %[[E2]]
// CHECK-NEXT:  func.return %[[S5]]

