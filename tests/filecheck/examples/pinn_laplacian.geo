// Golden IR of examples/pinn_laplacian.geo: a tanh MLP U and one derived function per
// `derive`, each holding a single jet.* request on @U with its signature (before the
// default pipeline's jet-expand lowers them: see tests/filecheck/passes/jet-expand*.geo).
// RUN: geomc %examples/pinn_laplacian.geo --emit=ir --passes=cse,dce | filecheck %s

// CHECK-LABEL: func.func @U(
// CHECK-SAME:    %[[X:.*]]: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 1, f32> {
// CHECK-NEXT:  %[[W0:.*]] = geo.param "U.linear0.weight" init "glorot_uniform" : tensor<64x2xf32>
// CHECK-NEXT:  %[[L0:.*]] = geo.linear %[[X]], %[[W0]] : !geo.point<euclidean, 2, f32>, tensor<64x2xf32> -> !geo.point<euclidean, 64, f32>
// CHECK-NEXT:  %[[B0:.*]] = geo.param "U.linear0.bias" init "zeros" : tensor<64xf32>
// CHECK-NEXT:  %[[A0:.*]] = geo.bias %[[L0]], %[[B0]] : {{.*}} -> !geo.point<euclidean, 64, f32>
// CHECK-NEXT:  %[[H0:.*]] = geo.tanh %[[A0]] : {{.*}} -> !geo.point<euclidean, 64, f32>
// CHECK-NEXT:  %[[W1:.*]] = geo.param "U.linear1.weight" init "glorot_uniform" : tensor<64x64xf32>
// CHECK-NEXT:  %[[L1:.*]] = geo.linear %[[H0]], %[[W1]] : {{.*}} -> !geo.point<euclidean, 64, f32>
// CHECK-NEXT:  %[[B1:.*]] = geo.param "U.linear1.bias" init "zeros" : tensor<64xf32>
// CHECK-NEXT:  %[[A1:.*]] = geo.bias %[[L1]], %[[B1]] : {{.*}} -> !geo.point<euclidean, 64, f32>
// CHECK-NEXT:  %[[H1:.*]] = geo.tanh %[[A1]] : {{.*}} -> !geo.point<euclidean, 64, f32>
// CHECK-NEXT:  %[[W2:.*]] = geo.param "U.linear2.weight" init "glorot_uniform" : tensor<64x64xf32>
// CHECK-NEXT:  %[[L2:.*]] = geo.linear %[[H1]], %[[W2]] : {{.*}} -> !geo.point<euclidean, 64, f32>
// CHECK-NEXT:  %[[B2:.*]] = geo.param "U.linear2.bias" init "zeros" : tensor<64xf32>
// CHECK-NEXT:  %[[A2:.*]] = geo.bias %[[L2]], %[[B2]] : {{.*}} -> !geo.point<euclidean, 64, f32>
// CHECK-NEXT:  %[[H2:.*]] = geo.tanh %[[A2]] : {{.*}} -> !geo.point<euclidean, 64, f32>
// CHECK-NEXT:  %[[W3:.*]] = geo.param "U.linear3.weight" init "glorot_uniform" : tensor<1x64xf32>
// CHECK-NEXT:  %[[L3:.*]] = geo.linear %[[H2]], %[[W3]] : {{.*}} -> !geo.point<euclidean, 1, f32>
// CHECK-NEXT:  %[[B3:.*]] = geo.param "U.linear3.bias" init "zeros" : tensor<1xf32>
// CHECK-NEXT:  %[[OUT:.*]] = geo.bias %[[L3]], %[[B3]] : {{.*}} -> !geo.point<euclidean, 1, f32>
// CHECK-NEXT:  func.return %[[OUT]] : !geo.point<euclidean, 1, f32>
// CHECK-NEXT: }

// derive lap_u = laplacian(U): (x) -> Δu, same type as U's output.
// CHECK-LABEL: func.func @lap_u(
// CHECK-SAME:    %[[X:.*]]: !geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 1, f32> {
// CHECK-NEXT:  %[[R:.*]] = jet.laplacian @U(%[[X]]) wrt 0 : (!geo.point<euclidean, 2, f32>) -> !geo.point<euclidean, 1, f32>
// CHECK-NEXT:  func.return %[[R]] : !geo.point<euclidean, 1, f32>
// CHECK-NEXT: }

// derive du = jvp(U): (x, v) -> (u, J v); v is a tangent of x, J v a tangent of the output.
// CHECK-LABEL: func.func @du(
// CHECK-SAME:    %[[X:.*]]: !geo.point<euclidean, 2, f32>, %[[V:.*]]: !geo.tangent<euclidean, 2, f32>) -> (!geo.point<euclidean, 1, f32>, !geo.tangent<euclidean, 1, f32>) {
// CHECK-NEXT:  %[[P:.*]], %[[T:.*]] = jet.jvp @U(%[[X]]) along %[[V]] wrt 0 : (!geo.point<euclidean, 2, f32>), !geo.tangent<euclidean, 2, f32> -> (!geo.point<euclidean, 1, f32>, !geo.tangent<euclidean, 1, f32>)
// CHECK-NEXT:  func.return %[[P]], %[[T]] : !geo.point<euclidean, 1, f32>, !geo.tangent<euclidean, 1, f32>
// CHECK-NEXT: }

// derive d4_u = directional(U, order = 4): (x, v) -> a jet of order 4 over U's output.
// CHECK-LABEL: func.func @d4_u(
// CHECK-SAME:    %[[X:.*]]: !geo.point<euclidean, 2, f32>, %[[V:.*]]: !geo.tangent<euclidean, 2, f32>) -> !jet.jet<4, !geo.point<euclidean, 1, f32>> {
// CHECK-NEXT:  %[[J:.*]] = jet.directional @U(%[[X]]) along %[[V]] wrt 0 order 4 : (!geo.point<euclidean, 2, f32>), !geo.tangent<euclidean, 2, f32> -> !jet.jet<4, !geo.point<euclidean, 1, f32>>
// CHECK-NEXT:  func.return %[[J]] : !jet.jet<4, !geo.point<euclidean, 1, f32>>
// CHECK-NEXT: }

// derive grad_u = vjp(U): (x, w) -> wᵀ J; w is a tangent of the output, the result a tangent of x.
// CHECK-LABEL: func.func @grad_u(
// CHECK-SAME:    %[[X:.*]]: !geo.point<euclidean, 2, f32>, %[[W:.*]]: !geo.tangent<euclidean, 1, f32>) -> !geo.tangent<euclidean, 2, f32> {
// CHECK-NEXT:  %[[G:.*]] = jet.vjp @U(%[[X]]) cotangent %[[W]] wrt 0 : (!geo.point<euclidean, 2, f32>), !geo.tangent<euclidean, 1, f32> -> !geo.tangent<euclidean, 2, f32>
// CHECK-NEXT:  func.return %[[G]] : !geo.tangent<euclidean, 2, f32>
// CHECK-NEXT: }

// derive hess_u = hvp(U): (x, v) -> H v, a tangent of x.
// CHECK-LABEL: func.func @hess_u(
// CHECK-SAME:    %[[X:.*]]: !geo.point<euclidean, 2, f32>, %[[V:.*]]: !geo.tangent<euclidean, 2, f32>) -> !geo.tangent<euclidean, 2, f32> {
// CHECK-NEXT:  %[[HV:.*]] = jet.hvp @U(%[[X]]) along %[[V]] wrt 0 : (!geo.point<euclidean, 2, f32>), !geo.tangent<euclidean, 2, f32> -> !geo.tangent<euclidean, 2, f32>
// CHECK-NEXT:  func.return %[[HV]] : !geo.tangent<euclidean, 2, f32>
// CHECK-NEXT: }
