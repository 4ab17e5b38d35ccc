// inline-models rejects models that call each other in a cycle: exit code 1 (an error in
// the program, not a compiler bug) and a message naming the cycle.
// RUN: ( geomc %s --passes=inline-models; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: error: models call each other in a cycle: @A -> @B -> @A (recursive models are not supported)
// CHECK-NOT: Traceback

builtin.module {
  func.func @A(%x: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32> {
    %y = func.call @B(%x) : (!geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32>
    func.return %y : !geo.point<euclidean, 2, f32>
  }
  func.func @B(%x: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32> {
    %y = func.call @A(%x) : (!geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32>
    func.return %y : !geo.point<euclidean, 2, f32>
  }
}
