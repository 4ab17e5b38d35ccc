// #contract.equivariant names one of the known groups.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: invalid-contract-equivariant.mlir:7:41: error: contract.equivariant: unknown group 'rot3' (expected one of so2, perm, torus_translation, ball_rotation)
// CHECK-NOT: Traceback

func.func @f() attributes {contracts = [#contract.equivariant<rot3>]} {
  func.return
}
