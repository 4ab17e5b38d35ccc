// A model that calls itself (hand-written IR; the .geo front end forbids it) is an error
// before any pass or code generator sees it: exit code 1, the cycle named, no traceback.
// RUN: ( geomc %s; test $? -eq 1 ) 2>&1 | filecheck %s
// RUN: ( geomc %s --target=torch; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: rec.geo:3:10: error: models call each other in a cycle: @A -> @B -> @A (recursive models are not supported)
// CHECK-NOT: Traceback

builtin.module {
  func.func @A(%x: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32> {
    %y = func.call @B(%x) : (!geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32>
    func.return %y : !geo.point<euclidean, 2, f32>
  }
  func.func @B(%x: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32> {
    %y = func.call @A(%x) : (!geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32> loc("rec.geo":3:10)
    func.return %y : !geo.point<euclidean, 2, f32>
  }
}
