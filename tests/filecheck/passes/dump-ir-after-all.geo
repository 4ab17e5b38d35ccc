// --dump-ir-after-all without --dump-dir writes the IR to stderr before any pass and after
// each pass, under MLIR-style headers; stdout still gets the final IR.
// RUN: geomc %s --passes=cse,dce --dump-ir-after-all 2>&1 >/dev/null | filecheck %s
// RUN: geomc %s --passes=cse,dce --dump-ir-after-all 2>/dev/null | filecheck %s --check-prefix=STDOUT
// An empty pipeline dumps only the input.
// RUN: geomc %s --passes= --dump-ir-after-all 2>&1 >/dev/null | filecheck %s --check-prefix=EMPTY

model M(x: R[2]) -> R[2] {
  let a = tanh(x)
  let b = tanh(x)
  let unused = sin(x)
  return a + b
}

// CHECK:       // -----// IR Dump Before Any Pass //----- //
// CHECK-NEXT:  builtin.module {
// CHECK:         %[[A:.*]] = geo.tanh
// CHECK-NEXT:    %[[B:.*]] = geo.tanh
// CHECK-NEXT:    geo.sin
// CHECK-NEXT:    geo.add %[[A]], %[[B]] :
// CHECK:       // -----// IR Dump After cse //----- //
// CHECK-NEXT:  builtin.module {
// CHECK:         %[[A:.*]] = geo.tanh
// CHECK-NOT:     geo.tanh
// CHECK:         geo.add %[[A]], %[[A]] :
// CHECK:       // -----// IR Dump After dce //----- //
// CHECK-NEXT:  builtin.module {
// CHECK-NOT:     geo.sin
// CHECK:         func.return
// CHECK-NOT:   IR Dump

// STDOUT-NOT:  IR Dump
// STDOUT:      builtin.module {
// STDOUT:        %[[A:.*]] = geo.tanh
// STDOUT-NEXT:   geo.add %[[A]], %[[A]] :

// EMPTY:       // -----// IR Dump Before Any Pass //----- //
// EMPTY-NOT:   IR Dump After
