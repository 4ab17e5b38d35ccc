// Round trip of the custom syntax of every geo, jet and contract construct: each op, type
// and attribute parses and prints back unchanged, directly and through the generic form.
// RUN: geomc %s --passes= | filecheck %s
// RUN: t=$(mktemp -d) && geomc %s --passes= --emit=ir-generic -o $t/generic.mlir && geomc $t/generic.mlir --passes= | filecheck %s; rc=$?; rm -rf $t; test $rc -eq 0
// RUN: geomc %s --passes= --emit=ir-generic | filecheck %s --check-prefix=GENERIC

// CHECK: builtin.module {
builtin.module {

  // Manifold ops on the Poincaré ball; contracts on func.func.
  // CHECK-LABEL: func.func @manifold_ops(
  // CHECK-SAME:    %[[X:.*]]: !geo.point<poincare<0.5>, 4, f32>, %[[Y:.*]]: !geo.point<poincare<0.5>, 4, f32>, %[[R:.*]]: !geo.point<euclidean, 1, f32>) -> !geo.point<poincare<0.5>, 4, f32> attributes {contracts = [#contract.lipschitz<4.0>, #contract.equivariant<ball_rotation>]} {
  // CHECK-NEXT:    %[[V:.*]] = geo.logmap %[[X]], %[[Y]] : !geo.point<poincare<0.5>, 4, f32>, !geo.point<poincare<0.5>, 4, f32> -> !geo.tangent<poincare<0.5>, 4, f32>
  // CHECK-NEXT:    %[[W:.*]] = geo.parallel_transport %[[X]], %[[Y]], %[[V]] : !geo.point<poincare<0.5>, 4, f32>, !geo.point<poincare<0.5>, 4, f32>, !geo.tangent<poincare<0.5>, 4, f32> -> !geo.tangent<poincare<0.5>, 4, f32>
  // CHECK-NEXT:    %[[Z:.*]] = geo.expmap %[[Y]], %[[W]] : !geo.point<poincare<0.5>, 4, f32>, !geo.tangent<poincare<0.5>, 4, f32> -> !geo.point<poincare<0.5>, 4, f32>
  // CHECK-NEXT:    %[[T:.*]] = geo.logmap0 %[[Z]] : !geo.point<poincare<0.5>, 4, f32> -> !geo.tangent<poincare<0.5>, 4, f32>
  // CHECK-NEXT:    %[[P:.*]] = geo.expmap0 %[[T]] : !geo.tangent<poincare<0.5>, 4, f32> -> !geo.point<poincare<0.5>, 4, f32>
  // CHECK-NEXT:    %[[D:.*]] = geo.dist %[[P]], %[[Y]] : !geo.point<poincare<0.5>, 4, f32>, !geo.point<poincare<0.5>, 4, f32> -> !geo.point<euclidean, 1, f32>
  // CHECK-NEXT:    %[[S:.*]] = geo.mobius_scalar %[[R]], %[[P]] : !geo.point<euclidean, 1, f32>, !geo.point<poincare<0.5>, 4, f32> -> !geo.point<poincare<0.5>, 4, f32>
  // CHECK-NEXT:    %[[A:.*]] = geo.mobius_add %[[S]], %[[X]] : !geo.point<poincare<0.5>, 4, f32>, !geo.point<poincare<0.5>, 4, f32> -> !geo.point<poincare<0.5>, 4, f32>
  // CHECK-NEXT:    %[[MW:.*]] = geo.param "M.mobius_matvec0.weight" init "glorot_uniform" : tensor<4x4xf32>
  // CHECK-NEXT:    %[[M:.*]] = geo.mobius_matvec %[[MW]], %[[A]] : tensor<4x4xf32>, !geo.point<poincare<0.5>, 4, f32> -> !geo.point<poincare<0.5>, 4, f32>
  // CHECK-NEXT:    %[[C:.*]] = geo.coords %[[M]] : !geo.point<poincare<0.5>, 4, f32> -> !geo.point<euclidean, 4, f32>
  // CHECK-NEXT:    %[[Q:.*]] = geo.proj %[[M]] : !geo.point<poincare<0.5>, 4, f32> -> !geo.point<poincare<0.5>, 4, f32>
  // CHECK-NEXT:    func.return %[[Q]] : !geo.point<poincare<0.5>, 4, f32>
  // CHECK-NEXT:  }
  func.func @manifold_ops(%x: !geo.point<poincare<0.5>, 4, f32>, %y: !geo.point<poincare<0.5>, 4, f32>, %r: !geo.point<euclidean, 1, f32>) -> !geo.point<poincare<0.5>, 4, f32> attributes {contracts = [#contract.lipschitz<4.0>, #contract.equivariant<ball_rotation>]} {
    %v = geo.logmap %x, %y : !geo.point<poincare<0.5>, 4, f32>, !geo.point<poincare<0.5>, 4, f32> -> !geo.tangent<poincare<0.5>, 4, f32>
    %w = geo.parallel_transport %x, %y, %v : !geo.point<poincare<0.5>, 4, f32>, !geo.point<poincare<0.5>, 4, f32>, !geo.tangent<poincare<0.5>, 4, f32> -> !geo.tangent<poincare<0.5>, 4, f32>
    %z = geo.expmap %y, %w : !geo.point<poincare<0.5>, 4, f32>, !geo.tangent<poincare<0.5>, 4, f32> -> !geo.point<poincare<0.5>, 4, f32>
    %t = geo.logmap0 %z : !geo.point<poincare<0.5>, 4, f32> -> !geo.tangent<poincare<0.5>, 4, f32>
    %p = geo.expmap0 %t : !geo.tangent<poincare<0.5>, 4, f32> -> !geo.point<poincare<0.5>, 4, f32>
    %d = geo.dist %p, %y : !geo.point<poincare<0.5>, 4, f32>, !geo.point<poincare<0.5>, 4, f32> -> !geo.point<euclidean, 1, f32>
    %s = geo.mobius_scalar %r, %p : !geo.point<euclidean, 1, f32>, !geo.point<poincare<0.5>, 4, f32> -> !geo.point<poincare<0.5>, 4, f32>
    %a = geo.mobius_add %s, %x : !geo.point<poincare<0.5>, 4, f32>, !geo.point<poincare<0.5>, 4, f32> -> !geo.point<poincare<0.5>, 4, f32>
    %mw = geo.param "M.mobius_matvec0.weight" init "glorot_uniform" : tensor<4x4xf32>
    %m = geo.mobius_matvec %mw, %a : tensor<4x4xf32>, !geo.point<poincare<0.5>, 4, f32> -> !geo.point<poincare<0.5>, 4, f32>
    %c = geo.coords %m : !geo.point<poincare<0.5>, 4, f32> -> !geo.point<euclidean, 4, f32>
    %q = geo.proj %m : !geo.point<poincare<0.5>, 4, f32> -> !geo.point<poincare<0.5>, 4, f32>
    func.return %q : !geo.point<poincare<0.5>, 4, f32>
  }

  // Layer and elementwise ops, f64; an elementwise op on a Lorentz tangent vector.
  // CHECK-LABEL: func.func @layer_ops(
  // CHECK-SAME:    %[[X:.*]]: !geo.point<euclidean, 3, f64>, %[[U:.*]]: !geo.tangent<lorentz<2.0>, 3, f64>) -> !geo.point<euclidean, 2, f64> attributes {contracts = [#contract.monotone<[0], decreasing>, #contract.lipschitz<1.0e-05>]} {
  // CHECK-NEXT:    %[[W:.*]] = geo.param "M.linear0.weight" init "glorot_uniform" : tensor<2x3xf64>
  // CHECK-NEXT:    %[[B:.*]] = geo.param "M.linear0.bias" init "zeros" : tensor<2xf64>
  // CHECK-NEXT:    %[[V0:.*]] = geo.linear %[[X]], %[[W]] : !geo.point<euclidean, 3, f64>, tensor<2x3xf64> -> !geo.point<euclidean, 2, f64>
  // CHECK-NEXT:    %[[V1:.*]] = geo.bias %[[V0]], %[[B]] : !geo.point<euclidean, 2, f64>, tensor<2xf64> -> !geo.point<euclidean, 2, f64>
  // CHECK-NEXT:    %[[V2:.*]] = geo.add %[[V1]], %[[V1]] : !geo.point<euclidean, 2, f64>, !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
  // CHECK-NEXT:    %[[V3:.*]] = geo.sub %[[V2]], %[[V1]] : !geo.point<euclidean, 2, f64>, !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
  // CHECK-NEXT:    %[[V4:.*]] = geo.mul %[[V3]], %[[V2]] : !geo.point<euclidean, 2, f64>, !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
  // CHECK-NEXT:    %[[V5:.*]] = geo.div %[[V4]], %[[V3]] : !geo.point<euclidean, 2, f64>, !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
  // CHECK-NEXT:    %[[V6:.*]] = geo.scale %[[V5]] factor -0.25 : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
  // CHECK-NEXT:    %[[V7:.*]] = geo.pow %[[V6]] exponent 3.0 : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
  // CHECK-NEXT:    %[[V8:.*]] = geo.neg %[[V7]] : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
  // CHECK-NEXT:    %[[V9:.*]] = geo.tanh %[[V8]] : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
  // CHECK-NEXT:    %[[V10:.*]] = geo.sigmoid %[[V9]] : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
  // CHECK-NEXT:    %[[V11:.*]] = geo.relu %[[V10]] : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
  // CHECK-NEXT:    %[[V12:.*]] = geo.softplus %[[V11]] : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
  // CHECK-NEXT:    %[[V13:.*]] = geo.exp %[[V12]] : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
  // CHECK-NEXT:    %[[V14:.*]] = geo.log %[[V13]] : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
  // CHECK-NEXT:    %[[V15:.*]] = geo.sqrt %[[V14]] : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
  // CHECK-NEXT:    %[[V16:.*]] = geo.sin %[[V15]] : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
  // CHECK-NEXT:    %[[V17:.*]] = geo.cos %[[V16]] : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
  // CHECK-NEXT:    %[[V18:.*]] = geo.tanh %[[U]] : !geo.tangent<lorentz<2.0>, 3, f64> -> !geo.tangent<lorentz<2.0>, 3, f64>
  // CHECK-NEXT:    func.return %[[V17]] : !geo.point<euclidean, 2, f64>
  // CHECK-NEXT:  }
  func.func @layer_ops(%x: !geo.point<euclidean, 3, f64>, %u: !geo.tangent<lorentz<2.0>, 3, f64>) -> !geo.point<euclidean, 2, f64> attributes {contracts = [#contract.monotone<[0], decreasing>, #contract.lipschitz<1.0e-05>]} {
    %w = geo.param "M.linear0.weight" init "glorot_uniform" : tensor<2x3xf64>
    %b = geo.param "M.linear0.bias" init "zeros" : tensor<2xf64>
    %0 = geo.linear %x, %w : !geo.point<euclidean, 3, f64>, tensor<2x3xf64> -> !geo.point<euclidean, 2, f64>
    %1 = geo.bias %0, %b : !geo.point<euclidean, 2, f64>, tensor<2xf64> -> !geo.point<euclidean, 2, f64>
    %2 = geo.add %1, %1 : !geo.point<euclidean, 2, f64>, !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
    %3 = geo.sub %2, %1 : !geo.point<euclidean, 2, f64>, !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
    %4 = geo.mul %3, %2 : !geo.point<euclidean, 2, f64>, !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
    %5 = geo.div %4, %3 : !geo.point<euclidean, 2, f64>, !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
    %6 = geo.scale %5 factor -0.25 : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
    %7 = geo.pow %6 exponent 3.0 : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
    %8 = geo.neg %7 : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
    %9 = geo.tanh %8 : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
    %10 = geo.sigmoid %9 : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
    %11 = geo.relu %10 : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
    %12 = geo.softplus %11 : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
    %13 = geo.exp %12 : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
    %14 = geo.log %13 : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
    %15 = geo.sqrt %14 : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
    %16 = geo.sin %15 : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
    %17 = geo.cos %16 : !geo.point<euclidean, 2, f64> -> !geo.point<euclidean, 2, f64>
    %18 = geo.tanh %u : !geo.tangent<lorentz<2.0>, 3, f64> -> !geo.tangent<lorentz<2.0>, 3, f64>
    func.return %17 : !geo.point<euclidean, 2, f64>
  }

  // geo.param of each init, with geo types, f16/bf16, sphere and torus units; a function
// without arguments.
  // CHECK-LABEL: func.func @params(
  // CHECK-SAME:    ) -> (!geo.point<sphere, 3, f16>, !geo.tangent<torus<turns>, 2, bf16>, !geo.point<torus<radians>, 2, f32>, tensor<5xf32>) {
  // CHECK-NEXT:    %[[V0:.*]] = geo.param "P.center" init "normal" : !geo.point<sphere, 3, f16>
  // CHECK-NEXT:    %[[V1:.*]] = geo.param "P.step" init "uniform_small" : !geo.tangent<torus<turns>, 2, bf16>
  // CHECK-NEXT:    %[[V2:.*]] = geo.param "P.phase" init "zeros" : !geo.point<torus<radians>, 2, f32>
  // CHECK-NEXT:    %[[V3:.*]] = geo.param "P.scale" init "uniform_small" : tensor<5xf32>
  // CHECK-NEXT:    func.return %[[V0]], %[[V1]], %[[V2]], %[[V3]] : !geo.point<sphere, 3, f16>, !geo.tangent<torus<turns>, 2, bf16>, !geo.point<torus<radians>, 2, f32>, tensor<5xf32>
  // CHECK-NEXT:  }
  func.func @params() -> (!geo.point<sphere, 3, f16>, !geo.tangent<torus<turns>, 2, bf16>, !geo.point<torus<radians>, 2, f32>, tensor<5xf32>) {
    %0 = geo.param "P.center" init "normal" : !geo.point<sphere, 3, f16>
    %1 = geo.param "P.step" init "uniform_small" : !geo.tangent<torus<turns>, 2, bf16>
    %2 = geo.param "P.phase" init "zeros" : !geo.point<torus<radians>, 2, f32>
    %3 = geo.param "P.scale" init "uniform_small" : tensor<5xf32>
    func.return %0, %1, %2, %3 : !geo.point<sphere, 3, f16>, !geo.tangent<torus<turns>, 2, bf16>, !geo.point<torus<radians>, 2, f32>, tensor<5xf32>
  }

  // jet.seed / jet.coeff and the !jet.jet type.
  // CHECK-LABEL: func.func @jets(
  // CHECK-SAME:    %[[X:.*]]: !geo.point<lorentz<1.0>, 3, f32>, %[[V:.*]]: !geo.tangent<lorentz<1.0>, 3, f32>) -> !geo.tangent<lorentz<1.0>, 3, f32> {
  // CHECK-NEXT:    %[[J:.*]] = jet.seed %[[X]], %[[V]] order 3 : !geo.point<lorentz<1.0>, 3, f32>, !geo.tangent<lorentz<1.0>, 3, f32> -> !jet.jet<3, !geo.point<lorentz<1.0>, 3, f32>>
  // CHECK-NEXT:    %[[C0:.*]] = jet.coeff %[[J]] index 0 : !jet.jet<3, !geo.point<lorentz<1.0>, 3, f32>> -> !geo.point<lorentz<1.0>, 3, f32>
  // CHECK-NEXT:    %[[C3:.*]] = jet.coeff %[[J]] index 3 : !jet.jet<3, !geo.point<lorentz<1.0>, 3, f32>> -> !geo.tangent<lorentz<1.0>, 3, f32>
  // CHECK-NEXT:    func.return %[[C3]] : !geo.tangent<lorentz<1.0>, 3, f32>
  // CHECK-NEXT:  }
  func.func @jets(%x: !geo.point<lorentz<1.0>, 3, f32>, %v: !geo.tangent<lorentz<1.0>, 3, f32>) -> !geo.tangent<lorentz<1.0>, 3, f32> {
    %j = jet.seed %x, %v order 3 : !geo.point<lorentz<1.0>, 3, f32>, !geo.tangent<lorentz<1.0>, 3, f32> -> !jet.jet<3, !geo.point<lorentz<1.0>, 3, f32>>
    %c0 = jet.coeff %j index 0 : !jet.jet<3, !geo.point<lorentz<1.0>, 3, f32>> -> !geo.point<lorentz<1.0>, 3, f32>
    %c3 = jet.coeff %j index 3 : !jet.jet<3, !geo.point<lorentz<1.0>, 3, f32>> -> !geo.tangent<lorentz<1.0>, 3, f32>
    func.return %c3 : !geo.tangent<lorentz<1.0>, 3, f32>
  }

  // The model the derivative requests below name.
  // CHECK-LABEL: func.func @U(
  // CHECK-SAME:    %[[X:.*]]: !geo.point<euclidean, 2, f32>, %[[S:.*]]: !geo.point<euclidean, 1, f32>) -> !geo.point<euclidean, 1, f32> {
  // CHECK-NEXT:    %[[V0:.*]] = geo.dist %[[X]], %[[X]] : !geo.point<euclidean, 2, f32>, !geo.point<euclidean, 2, f32> -> !geo.point<euclidean, 1, f32>
  // CHECK-NEXT:    %[[V1:.*]] = geo.mul %[[V0]], %[[S]] : !geo.point<euclidean, 1, f32>, !geo.point<euclidean, 1, f32> -> !geo.point<euclidean, 1, f32>
  // CHECK-NEXT:    func.return %[[V1]] : !geo.point<euclidean, 1, f32>
  // CHECK-NEXT:  }
  func.func @U(%x: !geo.point<euclidean, 2, f32>, %s: !geo.point<euclidean, 1, f32>) -> !geo.point<euclidean, 1, f32> {
    %0 = geo.dist %x, %x : !geo.point<euclidean, 2, f32>, !geo.point<euclidean, 2, f32> -> !geo.point<euclidean, 1, f32>
    %1 = geo.mul %0, %s : !geo.point<euclidean, 1, f32>, !geo.point<euclidean, 1, f32> -> !geo.point<euclidean, 1, f32>
    func.return %1 : !geo.point<euclidean, 1, f32>
  }

  // Every derivative request, with more than one model input and wrt 1.
  // CHECK-LABEL: func.func @requests(
  // CHECK-SAME:    %[[X:.*]]: !geo.point<euclidean, 2, f32>, %[[S:.*]]: !geo.point<euclidean, 1, f32>, %[[V:.*]]: !geo.tangent<euclidean, 2, f32>, %[[VS:.*]]: !geo.tangent<euclidean, 1, f32>) {
  // CHECK-NEXT:    %[[Y:.*]], %[[DY:.*]] = jet.jvp @U(%[[X]], %[[S]]) along %[[V]] wrt 0 : (!geo.point<euclidean, 2, f32>, !geo.point<euclidean, 1, f32>), !geo.tangent<euclidean, 2, f32> -> (!geo.point<euclidean, 1, f32>, !geo.tangent<euclidean, 1, f32>)
  // CHECK-NEXT:    %[[G:.*]] = jet.vjp @U(%[[X]], %[[S]]) cotangent %[[VS]] wrt 1 : (!geo.point<euclidean, 2, f32>, !geo.point<euclidean, 1, f32>), !geo.tangent<euclidean, 1, f32> -> !geo.tangent<euclidean, 1, f32>
  // CHECK-NEXT:    %[[H:.*]] = jet.hvp @U(%[[X]], %[[S]]) along %[[V]] wrt 0 : (!geo.point<euclidean, 2, f32>, !geo.point<euclidean, 1, f32>), !geo.tangent<euclidean, 2, f32> -> !geo.tangent<euclidean, 2, f32>
  // CHECK-NEXT:    %[[K:.*]] = jet.directional @U(%[[X]], %[[S]]) along %[[VS]] wrt 1 order 4 : (!geo.point<euclidean, 2, f32>, !geo.point<euclidean, 1, f32>), !geo.tangent<euclidean, 1, f32> -> !jet.jet<4, !geo.point<euclidean, 1, f32>>
  // CHECK-NEXT:    %[[L:.*]] = jet.laplacian @U(%[[X]], %[[S]]) wrt 0 : (!geo.point<euclidean, 2, f32>, !geo.point<euclidean, 1, f32>) -> !geo.point<euclidean, 1, f32>
  // CHECK-NEXT:    %[[B:.*]] = jet.biharmonic @U(%[[X]], %[[S]]) wrt 0 : (!geo.point<euclidean, 2, f32>, !geo.point<euclidean, 1, f32>) -> !geo.point<euclidean, 1, f32>
  // CHECK-NEXT:    func.return
  // CHECK-NEXT:  }
  func.func @requests(%x: !geo.point<euclidean, 2, f32>, %s: !geo.point<euclidean, 1, f32>, %v: !geo.tangent<euclidean, 2, f32>, %vs: !geo.tangent<euclidean, 1, f32>) {
    %y, %dy = jet.jvp @U(%x, %s) along %v wrt 0 : (!geo.point<euclidean, 2, f32>, !geo.point<euclidean, 1, f32>), !geo.tangent<euclidean, 2, f32> -> (!geo.point<euclidean, 1, f32>, !geo.tangent<euclidean, 1, f32>)
    %g = jet.vjp @U(%x, %s) cotangent %vs wrt 1 : (!geo.point<euclidean, 2, f32>, !geo.point<euclidean, 1, f32>), !geo.tangent<euclidean, 1, f32> -> !geo.tangent<euclidean, 1, f32>
    %h = jet.hvp @U(%x, %s) along %v wrt 0 : (!geo.point<euclidean, 2, f32>, !geo.point<euclidean, 1, f32>), !geo.tangent<euclidean, 2, f32> -> !geo.tangent<euclidean, 2, f32>
    %k = jet.directional @U(%x, %s) along %vs wrt 1 order 4 : (!geo.point<euclidean, 2, f32>, !geo.point<euclidean, 1, f32>), !geo.tangent<euclidean, 1, f32> -> !jet.jet<4, !geo.point<euclidean, 1, f32>>
    %l = jet.laplacian @U(%x, %s) wrt 0 : (!geo.point<euclidean, 2, f32>, !geo.point<euclidean, 1, f32>) -> !geo.point<euclidean, 1, f32>
    %b = jet.biharmonic @U(%x, %s) wrt 0 : (!geo.point<euclidean, 2, f32>, !geo.point<euclidean, 1, f32>) -> !geo.point<euclidean, 1, f32>
    func.return
  }

  // Discardable attributes on custom-syntax ops, float literals in exponent form.
  // CHECK-LABEL: func.func @syntax(
  // CHECK-SAME:    %[[X:.*]]: !geo.point<poincare<0.001>, 2, f32>, %[[E:.*]]: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32> attributes {contracts = [#contract.equivariant<so2>, #contract.equivariant<perm>]} {
  // CHECK-NEXT:    %[[V0:.*]] = geo.proj %[[X]] {note = "attr-dict after the operands"} : !geo.point<poincare<0.001>, 2, f32> -> !geo.point<poincare<0.001>, 2, f32>
  // CHECK-NEXT:    %[[V1:.*]] = geo.scale %[[E]] factor 1.0e-07 {k = 1 : i64} : !geo.point<euclidean, 2, f32> -> !geo.point<euclidean, 2, f32>
  // CHECK-NEXT:    %[[V2:.*]] = geo.pow %[[V1]] exponent -2.5e+20 : !geo.point<euclidean, 2, f32> -> !geo.point<euclidean, 2, f32>
  // CHECK-NEXT:    %[[V3:.*]] = geo.scale %[[V2]] factor 0.3333333333333333 : !geo.point<euclidean, 2, f32> -> !geo.point<euclidean, 2, f32>
  // CHECK-NEXT:    %[[D:.*]] = geo.dist %[[E]], %[[V3]] : !geo.point<euclidean, 2, f32>, !geo.point<euclidean, 2, f32> -> !geo.point<euclidean, 1, f32>
  // CHECK-NEXT:    %[[P:.*]] = geo.param "S.p" init "zeros" {trainable = false} : tensor<2xf32>
  // CHECK-NEXT:    %[[L:.*]] = jet.laplacian @U(%[[E]], %[[D]]) wrt 0 {fuse = true} : (!geo.point<euclidean, 2, f32>, !geo.point<euclidean, 1, f32>) -> !geo.point<euclidean, 1, f32>
  // CHECK-NEXT:    func.return %[[V3]] : !geo.point<euclidean, 2, f32>
  // CHECK-NEXT:  }
  func.func @syntax(%x: !geo.point<poincare<0.001>, 2, f32>, %e: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 2, f32> attributes {contracts = [#contract.equivariant<so2>, #contract.equivariant<perm>]} {
    %0 = geo.proj %x {note = "attr-dict after the operands"} : !geo.point<poincare<0.001>, 2, f32> -> !geo.point<poincare<0.001>, 2, f32>
    %1 = geo.scale %e factor 1.0e-07 {k = 1 : i64} : !geo.point<euclidean, 2, f32> -> !geo.point<euclidean, 2, f32>
    %2 = geo.pow %1 exponent -2.5e+20 : !geo.point<euclidean, 2, f32> -> !geo.point<euclidean, 2, f32>
    %3 = geo.scale %2 factor 0.3333333333333333 : !geo.point<euclidean, 2, f32> -> !geo.point<euclidean, 2, f32>
    %d = geo.dist %e, %3 : !geo.point<euclidean, 2, f32>, !geo.point<euclidean, 2, f32> -> !geo.point<euclidean, 1, f32>
    %p = geo.param "S.p" init "zeros" {trainable = false} : tensor<2xf32>
    %l = jet.laplacian @U(%e, %d) wrt 0 {fuse = true} : (!geo.point<euclidean, 2, f32>, !geo.point<euclidean, 1, f32>) -> !geo.point<euclidean, 1, f32>
    func.return %3 : !geo.point<euclidean, 2, f32>
  }
}
// CHECK-NEXT: }

// The generic form: properties in <{...}>, discardable attributes (contracts) in {...};
// a derivative request's operands are the model inputs followed by the direction/cotangent.
// GENERIC:      "builtin.module"() ({
// GENERIC:      "func.func"() <{sym_name = "manifold_ops", function_type = (!geo.point<poincare<0.5>, 4, f32>, !geo.point<poincare<0.5>, 4, f32>, !geo.point<euclidean, 1, f32>) -> !geo.point<poincare<0.5>, 4, f32>}> ({
// GENERIC:      %[[MW:.*]] = "geo.param"() <{param_name = "M.mobius_matvec0.weight", init = "glorot_uniform"}> : () -> tensor<4x4xf32>
// GENERIC-NEXT: "geo.mobius_matvec"(%[[MW]], %{{.*}}) : (tensor<4x4xf32>, !geo.point<poincare<0.5>, 4, f32>) -> !geo.point<poincare<0.5>, 4, f32>
// GENERIC:      }) {contracts = [#contract.lipschitz<4.0>, #contract.equivariant<ball_rotation>]} : () -> ()
// GENERIC:      "geo.scale"(%{{.*}}) <{factor = -2.500000e-01 : f64}>
// GENERIC:      "geo.pow"(%{{.*}}) <{exponent = 3.000000e+00 : f64}>
// GENERIC:      %[[J:.*]] = "jet.seed"(%{{.*}}, %{{.*}}) <{order = #builtin.int<3>}> : (!geo.point<lorentz<1.0>, 3, f32>, !geo.tangent<lorentz<1.0>, 3, f32>) -> !jet.jet<3, !geo.point<lorentz<1.0>, 3, f32>>
// GENERIC-NEXT: "jet.coeff"(%[[J]]) <{index = #builtin.int<0>}>
// GENERIC-LABEL: "func.func"() <{sym_name = "requests"
// GENERIC-NEXT: ^{{.*}}(%[[X:.*]]: !geo.point<euclidean, 2, f32>, %[[S:.*]]: !geo.point<euclidean, 1, f32>, %[[V:.*]]: !geo.tangent<euclidean, 2, f32>, %[[VS:.*]]: !geo.tangent<euclidean, 1, f32>):
// GENERIC-NEXT: "jet.jvp"(%[[X]], %[[S]], %[[V]]) <{callee = @U, wrt = #builtin.int<0>}>
// GENERIC-NEXT: "jet.vjp"(%[[X]], %[[S]], %[[VS]]) <{callee = @U, wrt = #builtin.int<1>}>
// GENERIC-NEXT: "jet.hvp"(%[[X]], %[[S]], %[[V]]) <{callee = @U, wrt = #builtin.int<0>}>
// GENERIC-NEXT: "jet.directional"(%[[X]], %[[S]], %[[VS]]) <{callee = @U, wrt = #builtin.int<1>, order = #builtin.int<4>}>
// GENERIC-NEXT: "jet.laplacian"(%[[X]], %[[S]]) <{callee = @U, wrt = #builtin.int<0>}>
// GENERIC-NEXT: "jet.biharmonic"(%[[X]], %[[S]]) <{callee = @U, wrt = #builtin.int<0>}>
// GENERIC:      "geo.param"() <{param_name = "S.p", init = "zeros"}> {trainable = false} : () -> tensor<2xf32>
// GENERIC-NEXT: "jet.laplacian"(%{{.*}}) <{callee = @U, wrt = #builtin.int<0>}> {fuse = true}
