// The request's operands must match the model's inputs.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: error: {{.*}}: invalid IR: jet.hvp: @U takes (!geo.point<euclidean, 2, f32>), found operands (!geo.point<euclidean, 1, f32>)
// CHECK-NOT: Traceback

func.func @U(%x: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 1, f32> {
  %0 = geo.dist %x, %x : !geo.point<euclidean, 2, f32>, !geo.point<euclidean, 2, f32> -> !geo.point<euclidean, 1, f32>
  func.return %0 : !geo.point<euclidean, 1, f32>
}
func.func @hvp(%x: !geo.point<euclidean, 1, f32>, %v: !geo.tangent<euclidean, 1, f32>) -> !geo.tangent<euclidean, 1, f32> {
  %0 = jet.hvp @U(%x) along %v wrt 0 : (!geo.point<euclidean, 1, f32>), !geo.tangent<euclidean, 1, f32> -> !geo.tangent<euclidean, 1, f32>
  func.return %0 : !geo.tangent<euclidean, 1, f32>
}
