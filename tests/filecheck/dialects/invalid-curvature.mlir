// The curvature parameter c of poincare/lorentz must be finite and > 0.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: invalid-curvature.mlir:7:18: error: geo.poincare: curvature c must be finite and > 0, found -1.0
// CHECK-NOT: Traceback

func.func @f(%x: !geo.point<poincare<-1.0>, 4, f32>) {
  func.return
}
