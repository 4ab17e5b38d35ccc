// #contract.monotone input indices are unique.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: invalid-contract-monotone.mlir:7:41: error: contract.monotone: input indices must be unique and >= 0, found [1, 1]
// CHECK-NOT: Traceback

func.func @f() attributes {contracts = [#contract.monotone<[1, 1], increasing>]} {
  func.return
}
