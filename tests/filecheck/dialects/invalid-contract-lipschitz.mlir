// A Lipschitz bound must be finite and > 0.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: invalid-contract-lipschitz.mlir:7:41: error: contract.lipschitz: bound must be finite and > 0, found 0.0
// CHECK-NOT: Traceback

func.func @f() attributes {contracts = [#contract.lipschitz<0.0>]} {
  func.return
}
