// A contract that does not fit the function's signature is rejected by the module verifier.
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s

func.func @f(%x: !geo.point<euclidean, 1, f32>) -> !geo.point<euclidean, 1, f32> attributes {contracts = [#contract.monotone<[5], increasing>]} {
  func.return %x : !geo.point<euclidean, 1, f32>
}

// CHECK: invalid IR: @f: contract #contract.monotone<[5], increasing> does not fit the model: monotone input index 5 is out of range: the model has 1 input(s)
