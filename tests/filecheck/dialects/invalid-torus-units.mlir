// Torus angles are in radians or turns.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: invalid-torus-units.mlir:7:18: error: geo.torus: unknown units 'degrees' (expected one of radians, turns)
// CHECK-NOT: Traceback

func.func @f(%x: !geo.point<torus<degrees>, 2, f32>) {
  func.return
}
