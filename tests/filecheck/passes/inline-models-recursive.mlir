// A model calling itself is the smallest cycle.
// RUN: ( geomc %s --passes=inline-models; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: error: models call each other in a cycle: @Loop -> @Loop (recursive models are not supported)
// CHECK-NOT: Traceback

func.func @Loop(%x: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32> {
  %y = func.call @Loop(%x) : (!geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32>
  func.return %y : !geo.point<euclidean, 2, f32>
}
