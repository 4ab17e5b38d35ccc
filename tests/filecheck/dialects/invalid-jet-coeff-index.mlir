// jet.coeff index must be within 0..K of the jet's order K.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: error: {{.*}}: invalid IR: jet.coeff: index 3 is out of range for !jet.jet<2, !geo.point<euclidean, 2, f32>> (expected 0 <= index <= K = 2)
// CHECK-NOT: Traceback

func.func @f(%x: !geo.point<euclidean, 2, f32>, %v: !geo.tangent<euclidean, 2, f32>) -> !geo.tangent<euclidean, 2, f32> {
  %j = jet.seed %x, %v order 2 : !geo.point<euclidean, 2, f32>, !geo.tangent<euclidean, 2, f32> -> !jet.jet<2, !geo.point<euclidean, 2, f32>>
  %c = jet.coeff %j index 3 : !jet.jet<2, !geo.point<euclidean, 2, f32>> -> !geo.tangent<euclidean, 2, f32>
  func.return %c : !geo.tangent<euclidean, 2, f32>
}
