// The sphere and the hyperboloid count ambient coordinates: at least 2.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: invalid-sphere-dim.mlir:7:18: error: geo.point: dimension must be >= 2 on sphere, found 1
// CHECK-NOT: Traceback

func.func @f(%x: !geo.point<sphere, 1, f32>) {
  func.return
}
