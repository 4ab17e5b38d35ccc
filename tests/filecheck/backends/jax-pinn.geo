// The JAX code for the PINN: pure functions; derivative requests call the autodiff reference.
// RUN: geomc %examples/pinn_laplacian.geo --target=jax | filecheck %s

// CHECK:      import jax
// CHECK-NEXT: import jax.numpy as jnp
// CHECK:      from geomir.backends.jax import derivatives, model, runtime
// CHECK-NOT:  runtime.
// CHECK:      'U.linear0.weight': model.ParamSpec((64, 2), 'glorot_uniform', None, jnp.float32),
// CHECK-NEXT: 'U.linear0.bias': model.ParamSpec((64,), 'zeros', None, jnp.float32),
// CHECK:      def U(params, x):
// CHECK:          linear0_weight = params['U.linear0.weight']
// CHECK-NEXT:     [[L:v[0-9]+]] = x @ linear0_weight.T
// CHECK-NEXT:     linear0_bias = params['U.linear0.bias']
// CHECK-NEXT:     [[B:v[0-9]+]] = [[L]] + linear0_bias
// CHECK-NEXT:     h = jnp.tanh([[B]])
// CHECK:      def lap_u(params, x):
// CHECK:          = derivatives.laplacian(U, params, (x,), wrt=0)
// CHECK:      def du(params, x, v):
// CHECK:          [[Y:v[0-9]+]], [[DY:v[0-9]+]] = derivatives.jvp(U, params, (x,), v, wrt=0)
// CHECK-NEXT:     return [[Y]], [[DY]]
// CHECK:      def d4_u(params, x, v):
// CHECK:          = derivatives.directional(U, params, (x,), v, wrt=0, order=4)
// CHECK:      def grad_u(params, x, w):
// CHECK:          = derivatives.vjp(U, params, (x,), w, wrt=0)
// CHECK:      def hess_u(params, x, v):
// CHECK:          = derivatives.hvp(U, params, (x,), v, wrt=0)
// CHECK-NOT:  class
