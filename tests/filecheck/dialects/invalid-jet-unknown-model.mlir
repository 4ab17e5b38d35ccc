// A derivative request must name a model of the module.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: error: {{.*}}: invalid IR: jet.laplacian: unknown model @Missing
// CHECK-NOT: Traceback

func.func @lap(%x: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 1, f32> {
  %0 = jet.laplacian @Missing(%x) wrt 0 : (!geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 1, f32>
  func.return %0 : !geo.point<euclidean, 1, f32>
}
