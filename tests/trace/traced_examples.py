"""Every model of examples/*.geo written as traced Python, line for line (issue 9): the
tests compare their IR with the .geo programs'."""

from __future__ import annotations

import geomir as g

H1 = g.PoincareBall(c=1.0, name="H")
H05 = g.PoincareBall(c=0.5, name="H")
T = g.Torus(units="radians", name="T")
S = g.Sphere(name="S")
L = g.Lorentz(c=1.0, name="L")
T_TURNS = g.Torus(units="turns", name="T")


# -- examples/hyperbolic_mlp.geo ----------------------------------------------------------------

@g.lipschitz(6.0, radius=0.5)
@g.trace(x=H1.point(16))
def HyperbolicMLP(x):
    h = g.mobius_linear(x, 16, 32)
    h = g.mobius_tanh(h)
    return g.mobius_linear(h, 32, 8)


@g.trace(x=H1.point(16), prototype=H1.point(8))
def PrototypeScore(x, prototype):
    z = HyperbolicMLP(x)
    return -1.0 * g.dist(z, prototype)


# -- examples/hyperbolic_classifier.geo ---------------------------------------------------------

@g.trace(x=H1.point(2))
def Encoder(x):
    h = g.mobius_linear(x, 2, 16)
    return g.mobius_tanh(h)


@g.trace(x=H1.point(2))
def Classifier(x):
    z = Encoder(x)
    return g.coords(g.linear(g.logmap0(z), 16, 4))


# -- examples/equivariant_ball.geo --------------------------------------------------------------

@g.equivariant("ball_rotation")
@g.trace(x=H05.point(8), y=H05.point(8), t=g.R(1))
def Geodesic(x, y, t):
    minus_x = g.expmap0(-g.logmap0(x))
    return g.mobius_add(x, g.mobius_scalar(t, g.mobius_add(minus_x, y)))


@g.equivariant("so2")
@g.trace(p=g.R(2), q=g.R(2))
def PairEnergy(p, q):
    d = g.dist(p, q)
    return d * d


# -- examples/lipschitz_classifier.geo ----------------------------------------------------------

@g.lipschitz(4.0)
@g.trace(x=g.R(32))
def RobustClassifier(x):
    h = g.relu(g.linear(x, 32, 64))
    h = g.relu(g.linear(h, 64, 64))
    return g.linear(h, 64, 10)


@g.monotone("dose", "increasing")
@g.trace(dose=g.R(1), covariates=g.R(4))
def DoseResponse(dose, covariates):
    h = g.softplus(g.linear(dose, 1, 8, nonnegative=True) + g.linear(covariates, 4, 8))
    return g.linear(h, 8, 1, nonnegative=True)


# -- examples/pinn_laplacian.geo (a loop: Python unrolls it) -------------------------------------

@g.trace(x=g.R(2))
def U(x):
    h = x
    for width_in in (2, 64, 64):
        h = g.tanh(g.linear(h, width_in, 64))
    return g.linear(h, 64, 1)


# -- examples/torus_oscillator.geo --------------------------------------------------------------

@g.trace(theta=T.point(4))
def PhaseReadout(theta):
    s = g.sin(g.coords(theta))
    c = g.cos(g.coords(theta))
    h = g.tanh(g.linear(s, 4, 16) + g.linear(c, 4, 16))
    return g.linear(h, 16, 1)


@g.equivariant("torus_translation")
@g.trace(a=T.point(4), b=T.point(4))
def TorusKernel(a, b):
    d = g.dist(a, b)
    return g.exp(-0.5 * d * d)


@g.trace(theta=T.point(4), target=T.point(4))
def PhaseStep(theta, target):
    v = g.logmap(theta, target)
    v = 0.1 * g.tanh(g.linear(v, 4, 4))
    return g.proj(g.expmap(theta, v))


# -- examples/hyperbolic_residual.geo -----------------------------------------------------------

H4 = H1.point(4)


@g.trace(x=H4)
def Block(x):
    u = g.tanh(g.linear(g.logmap0(x), 4, 4))
    return g.expmap(x, g.scale(u, 0.5))


@g.trace(x=H4, y=H4, z=H4)
def Aggregate(x, y, z):
    my = g.tanh(g.linear(g.logmap(y, x), 4, 4))
    mz = g.tanh(g.linear(g.logmap(z, x), 4, 4))
    return g.logmap(x, y) + my + mz


@g.trace(x=H4, y=H4, z=H4)
def Loop(x, y, z):
    return g.holonomy(g.logmap(x, y), x, y, z)


# -- examples/manifolds_tour.geo ------------------------------------------------------------------

@g.trace(x=H1.point(4), y=H1.point(4), r=g.R(1))
def BallOps(x, y, r):
    v = g.logmap(x, y)
    w = g.parallel_transport(x, y, v)
    z = g.expmap(y, w)
    z = g.mobius_add(z, g.mobius_scalar(r, x))
    z = g.mobius_matvec(z, 4, 4)
    return g.proj(g.mobius_relu(z))


@g.trace(x=L.point(5))
def LorentzOps(x):
    v = g.logmap0(x)
    y = g.expmap0(g.sigmoid(g.linear(v, 5, 5)))
    return g.dist(x, y)


@g.trace(x=S.point(3), v=S.tangent(3))
def SphereOps(x, v):
    y = g.expmap(x, v)
    return g.proj(y)


@g.trace(a=T_TURNS.point(2), b=T_TURNS.point(2))
def TorusOps(a, b):
    d = g.coords(g.logmap(a, b))
    return g.pow(d, 2.0) + g.sqrt(g.softplus(d)) - g.log(g.exp(d)) / 2.0


# -- examples/bandit_policy.geo ---------------------------------------------------------------

@g.trace(x=g.R(6))
def Policy(x):
    h = g.tanh(g.linear(x, 6, 32))
    return g.linear(h, 32, 4)


EXAMPLES = {
    "bandit_policy.geo": [Policy],
    "hyperbolic_mlp.geo": [HyperbolicMLP, PrototypeScore],
    "hyperbolic_classifier.geo": [Encoder, Classifier],
    "equivariant_ball.geo": [Geodesic, PairEnergy],
    "lipschitz_classifier.geo": [RobustClassifier, DoseResponse],
    "pinn_laplacian.geo": [U],
    "torus_oscillator.geo": [PhaseReadout, TorusKernel, PhaseStep],
    "hyperbolic_residual.geo": [Block, Aggregate, Loop],
    "manifolds_tour.geo": [BallOps, LorentzOps, SphereOps, TorusOps],
}
"""example file -> its models, traced."""
