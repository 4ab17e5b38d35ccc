// jet.laplacian returns the model's output type (checked against the model).
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: error: {{.*}}: invalid IR: jet.laplacian: result #0 has type !geo.point<euclidean, 2, f32>, expected !geo.point<euclidean, 1, f32> (the model output type; @U returns !geo.point<euclidean, 1, f32>)
// CHECK-NOT: Traceback

func.func @U(%x: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 1, f32> {
  %0 = geo.dist %x, %x : !geo.point<euclidean, 2, f32>, !geo.point<euclidean, 2, f32> -> !geo.point<euclidean, 1, f32>
  func.return %0 : !geo.point<euclidean, 1, f32>
}
func.func @lap(%x: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32> {
  %0 = jet.laplacian @U(%x) wrt 0 : (!geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32>
  func.return %0 : !geo.point<euclidean, 2, f32>
}
