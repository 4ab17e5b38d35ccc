// A call of a function declared without a body cannot be inlined: a clear error, exit 1.
// RUN: ( geomc %s --passes=inline-models; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: error: inline-models: @Model calls @External, which has no body in this module
// CHECK-NOT: Traceback

func.func private @External(!geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32>
func.func @Model(%x: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32> {
  %y = func.call @External(%x) : (!geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32>
  func.return %y : !geo.point<euclidean, 2, f32>
}
