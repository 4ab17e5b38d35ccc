// A value used before the op that defines it: the parser accepts the forward reference,
// the module verifier rejects it (before, the torch backend crashed with a KeyError).
// RUN: ( geomc %s --passes=; test $? -eq 1 ) 2>&1 | filecheck %s
// RUN: ( geomc %s --target=torch; test $? -eq 1 ) 2>&1 | filecheck %s

// CHECK: error: {{.*}}invalid-use-before-def.mlir: invalid IR: geo.tanh: operand #0 (%z) is defined after its use (by geo.sin); a value must be defined before it is used
// CHECK-NOT: internal compiler error
// CHECK-NOT: Traceback

func.func @f(%x: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32> {
  %y = geo.tanh %z : !geo.point<euclidean, 2, f32> -> !geo.point<euclidean, 2, f32>
  %z = geo.sin %x : !geo.point<euclidean, 2, f32> -> !geo.point<euclidean, 2, f32>
  func.return %y : !geo.point<euclidean, 2, f32>
}
