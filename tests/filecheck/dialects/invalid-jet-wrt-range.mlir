// wrt must index one of the model inputs.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: error: {{.*}}: invalid IR: jet.laplacian: wrt = 1 is out of range for 1 model input(s)
// CHECK-NOT: Traceback

func.func @U(%x: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 1, f32> {
  %0 = geo.dist %x, %x : !geo.point<euclidean, 2, f32>, !geo.point<euclidean, 2, f32> -> !geo.point<euclidean, 1, f32>
  func.return %0 : !geo.point<euclidean, 1, f32>
}
func.func @lap(%x: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 1, f32> {
  %0 = jet.laplacian @U(%x) wrt 1 : (!geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 1, f32>
  func.return %0 : !geo.point<euclidean, 1, f32>
}
