// Golden IR of examples/winding/phase_memory.geo: path T[4] inputs are !geo.path, the path
// builtins are geo.unwrap / geo.winding / geo.winding_margin / geo.endpoint, and the
// torch and jax code calls the runtime Torus; triton refuses paths.
// RUN: geomc %examples/winding/phase_memory.geo --emit=ir | filecheck %s
// The printed IR parses back to the same IR:
// RUN: geomc %examples/winding/phase_memory.geo --emit=ir -o %t.mlir && geomc %t.mlir --passes= | filecheck %s
// RUN: geomc %examples/winding/phase_memory.geo --target=torch | filecheck %s --check-prefix=PY
// RUN: geomc %examples/winding/phase_memory.geo --target=jax | filecheck %s --check-prefix=PY
// RUN: ( geomc %examples/winding/phase_memory.geo --target=triton; test $? -ne 0 ) 2>&1 | filecheck %s --check-prefix=TRITON

// CHECK-LABEL: func.func @Winding(
// CHECK-SAME:    %[[P:.*]]: !geo.path<torus<radians>, 4, f32>) -> !geo.point<euclidean, 4, f32> {
// CHECK-NEXT:  %[[W:.*]] = geo.winding %[[P]] : !geo.path<torus<radians>, 4, f32> -> !geo.point<euclidean, 4, f32>
// CHECK-NEXT:  func.return %[[W]] : !geo.point<euclidean, 4, f32>
// CHECK-NEXT: }

// CHECK-LABEL: func.func @Margin(
// CHECK-SAME:    %[[P:.*]]: !geo.path<torus<radians>, 4, f32>) -> !geo.point<euclidean, 1, f32> {
// CHECK-NEXT:  %[[M:.*]] = geo.winding_margin %[[P]] : !geo.path<torus<radians>, 4, f32> -> !geo.point<euclidean, 1, f32>
// CHECK-NEXT:  func.return %[[M]] : !geo.point<euclidean, 1, f32>
// CHECK-NEXT: }

// CHECK-LABEL: func.func @Address(
// CHECK-SAME:    %[[P:.*]]: !geo.path<torus<radians>, 4, f32>) -> !geo.point<torus<radians>, 4, f32> {
// CHECK-NEXT:  %[[E:.*]] = geo.endpoint %[[P]] : !geo.path<torus<radians>, 4, f32> -> !geo.point<torus<radians>, 4, f32>
// CHECK-NEXT:  func.return %[[E]] : !geo.point<torus<radians>, 4, f32>
// CHECK-NEXT: }

// CHECK-LABEL: func.func @Readout(
// CHECK-SAME:    %[[P:.*]]: !geo.path<torus<radians>, 4, f64>) -> !geo.point<euclidean, 1, f64> {
// CHECK-NEXT:  %[[D:.*]] = geo.unwrap %[[P]] : !geo.path<torus<radians>, 4, f64> -> !geo.point<euclidean, 4, f64>
// CHECK-NEXT:  %[[END:.*]] = geo.endpoint %[[P]] : !geo.path<torus<radians>, 4, f64> -> !geo.point<torus<radians>, 4, f64>
// CHECK-NEXT:  %[[LOG:.*]] = geo.logmap0 %[[END]] : !geo.point<torus<radians>, 4, f64> -> !geo.tangent<torus<radians>, 4, f64>
// CHECK-NEXT:  %[[C:.*]] = geo.coords %[[LOG]] : !geo.tangent<torus<radians>, 4, f64> -> !geo.point<euclidean, 4, f64>
// CHECK-NEXT:  %[[S:.*]] = geo.scale %[[D]] factor 0.15915494309189535 : !geo.point<euclidean, 4, f64> -> !geo.point<euclidean, 4, f64>
// CHECK-NEXT:  %[[T:.*]] = geo.tanh %[[S]] : {{.*}}
// CHECK-NEXT:  %[[SIN:.*]] = geo.sin %[[C]] : {{.*}}
// CHECK-NEXT:  %[[SUM:.*]] = geo.add %[[T]], %[[SIN]] : {{.*}}
// CHECK-NEXT:  %[[W0:.*]] = geo.param "Readout.linear0.weight" init "glorot_uniform" : tensor<1x4xf64>
// CHECK-NEXT:  %[[L:.*]] = geo.linear %[[SUM]], %[[W0]] : {{.*}} -> !geo.point<euclidean, 1, f64>
// CHECK-NEXT:  %[[B0:.*]] = geo.param "Readout.linear0.bias" init "zeros" : tensor<1xf64>
// CHECK-NEXT:  %[[OUT:.*]] = geo.bias %[[L]], %[[B0]] : {{.*}} -> !geo.point<euclidean, 1, f64>
// CHECK-NEXT:  func.return %[[OUT]] : !geo.point<euclidean, 1, f64>
// CHECK-NEXT: }

// PY: torus_radians = runtime.Torus(period=2 * math.pi)
// PY-LABEL: def Winding(params, p):
// PY: = torus_radians.winding(p)
// PY-LABEL: def Margin(params, p):
// PY: = torus_radians.winding_margin(p)
// PY-LABEL: def Address(params, p):
// PY: = torus_radians.proj(p[..., -1, :])
// PY-LABEL: def Readout(params, p):
// PY: d = torus_radians.displacement(p)
// PY: = torus_radians.proj(p[..., -1, :])

// TRITON: error: {{.*}}phase_memory.geo:10:7: @Winding takes a path (!geo.path); paths and the winding ops (unwrap, winding, winding_margin, endpoint) are available on the torch and jax targets, not on triton
// TRITON-NOT: Traceback
