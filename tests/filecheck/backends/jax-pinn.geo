// The JAX code for the PINN: pure functions; derivatives are Taylor-mode runtime calls.
// RUN: geomc %examples/pinn_laplacian.geo --target=jax | filecheck %s

// CHECK:      import jax
// CHECK-NEXT: import jax.numpy as jnp
// CHECK:      from geomir.backends.jax import derivatives, model, runtime, taylor
// CHECK-NOT:  runtime.
// CHECK:      'U.linear0.weight': model.ParamSpec((64, 2), 'glorot_uniform', None, jnp.float32),
// CHECK-NEXT: 'U.linear0.bias': model.ParamSpec((64,), 'zeros', None, jnp.float32),
// CHECK:      def U(params, x):
// CHECK:          linear0_weight = params['U.linear0.weight']
// CHECK-NEXT:     [[L:v[0-9]+]] = x @ linear0_weight.T
// CHECK-NEXT:     linear0_bias = params['U.linear0.bias']
// CHECK-NEXT:     [[B:v[0-9]+]] = [[L]] + linear0_bias
// CHECK-NEXT:     h = jnp.tanh([[B]])
// The default pipeline lowers the requests to Taylor mode (jet-expand, jet-fuse).
// CHECK:      def lap_u(params, x):
// CHECK:          [[S:v[0-9]+]] = taylor.laplacian_seed(x)
// CHECK:          h = taylor.layer([[S]], linear0_weight, linear0_bias, activation='geo.tanh')
// CHECK:          [[O:v[0-9]+]] = taylor.layer(h_2, linear3_weight, linear3_bias)
// CHECK-NEXT:     [[LAP:v[0-9]+]] = taylor.laplacian_of([[O]])
// CHECK-NEXT:     return [[LAP]]
// CHECK:      def du(params, x, v):
// CHECK:          taylor.seed(x, v, 1)
// CHECK:          [[O:v[0-9]+]] = taylor.layer(h_2, linear3_weight, linear3_bias)
// CHECK-NEXT:     [[Y:v[0-9]+]] = [[O]][0]
// CHECK-NEXT:     [[DY:v[0-9]+]] = [[O]][1]
// CHECK-NEXT:     return [[Y]], [[DY]]
// CHECK:      def d4_u(params, x, v):
// CHECK:          taylor.seed(x, v, 4)
// CHECK:          return taylor.to_derivatives(
// The vjp is the framework's reverse pass; hvp is its gradient of a generated jvp.
// CHECK:      def grad_u(params, x, w):
// CHECK:          = derivatives.vjp(U, params, (x,), w, wrt=0)
// CHECK:      def hess_u(params, x, v):
// CHECK:          = derivatives.grad(U__jvp_wrt0, params, (x, v), wrt=0)
// CHECK:      def U__jvp_wrt0(params, x, v):
// CHECK:          taylor.seed(x, v, 1)
// CHECK-NOT:  class
