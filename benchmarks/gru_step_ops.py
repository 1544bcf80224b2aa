"""Where one GRU time step's elementwise time goes in the fast tier, op by op, and what a
gate-major layout would change (a measurement for the next change; nothing here is library
code).

    python benchmarks/gru_step_ops.py                      # configuration A's B = 128, H = 256
    python benchmarks/gru_step_ops.py --threads 2 --json runs/gru_step_ops.json

``minis2s/fast/gru.py`` keeps the gates side by side in the last axis: the input projections
gi (T, B, 3H), the step's product gh = h_prev W_hhᵀ (B, 3H), the [r | z] cache (T, B, 2H) and the
gate gradients G (T, B, 4H). So most of a step's operands are 2-D views whose rows are H or 2H
floats out of 3H or 4H: NumPy walks them row by row. The script times every ufunc call of
``_direction_forward``'s and ``_direction_backward``'s loop bodies on exactly those views, and
the same call on contiguous operands of the same shape ("gate-major": each gate its own
contiguous (B, H) block), then whole loop bodies in both layouts, the gate-major one with its
step product as three (B, H) × (H, H) products (forward) and three products plus two additions
(backward), as that layout needs. Each figure is the best of 7 repeats of 300 calls, in µs.
"""

from __future__ import annotations

import argparse
import os
import sys
import timeit


def best_us(f, number=300, repeat=7):
    return min(timeit.repeat(f, number=number, repeat=repeat)) / number * 1e6


def measure(B, H):
    import numpy as np

    rng = np.random.default_rng(0)
    f32 = np.float32
    T, t = 8, 3

    def rand(*shape):
        return (rng.standard_normal(shape) * 0.5).astype(f32)

    # ---- the fast tier's layout (gates side by side) -------------------------------------
    gi, gh, b_hn = rand(T, B, 3 * H), rand(B, 3 * H), rand(H)
    hs, rz = rand(T + 1, B, H), rand(T, B, 2 * H)
    n, hn, r_hn, z_diff = (rand(T, B, H) for _ in range(4))
    h_prev, h, a = hs[t], hs[t + 1], rz[t]
    r, z = a[:, :H], a[:, H:]
    G = rand(T, B, 4 * H)
    da_n, da_r, da_z, dhn = (G[t, :, i * H:(i + 1) * H] for i in range(4))
    g, dh_z, dh_omz, carry = rand(B, H), rand(B, H), rand(B, H), rand(B, H)
    W_hhT, W_hh = rand(H, 3 * H), rand(3 * H, H)

    # ---- contiguous operands of the same shapes -------------------------------------------
    c = {k: rand(B, H) for k in ("gi_n", "gh_n", "r", "z", "hn", "u", "n", "zd", "h", "da_n",
                                 "da_r", "da_z", "dhn")}
    c_a, c_rz_in1, c_rz_in2 = rand(2, B, H), rand(2, B, H), rand(2, B, H)
    # outputs for the calls that are in place in the library: the same layouts, other memory,
    # so that repeating a call does not drift its values into infinities or subnormals
    a2, c_a2 = rand(T, B, 2 * H)[t], rand(2, B, H)
    zd2, G2, c2 = rand(T, B, H)[t], rand(T, B, 4 * H), rand(B, H)
    da_n2, da_r2 = G2[t, :, :H], G2[t, :, H:2 * H]

    fwd = [  # (what, the fast tier's call, the contiguous call)
        ("a = gi_rz + gh_rz", lambda: np.add(gi[t, :, :2 * H], gh[:, :2 * H], out=a),
         lambda: np.add(c_rz_in1, c_rz_in2, out=c_a)),
        ("tanh(a)", lambda: np.tanh(a, out=a2), lambda: np.tanh(c_a, out=c_a2)),
        ("a *= 0.5", lambda: np.multiply(a, 0.5, out=a2),
         lambda: np.multiply(c_a, 0.5, out=c_a2)),
        ("a += 0.5", lambda: np.add(a, 0.5, out=a2), lambda: np.add(c_a, 0.5, out=c_a2)),
        ("hn = gh_n + b_hn", lambda: np.add(gh[:, 2 * H:], b_hn, out=hn[t]),
         lambda: np.add(c["gh_n"], b_hn, out=c["hn"])),
        ("u = r ⊙ hn", lambda: np.multiply(r, hn[t], out=r_hn[t]),
         lambda: np.multiply(c["r"], c["hn"], out=c["u"])),
        ("n = gi_n + u", lambda: np.add(gi[t, :, 2 * H:], r_hn[t], out=n[t]),
         lambda: np.add(c["gi_n"], c["u"], out=c["n"])),
        ("tanh(n)", lambda: np.tanh(n[t], out=zd2), lambda: np.tanh(c["n"], out=c2)),
        ("zd = h_prev − n", lambda: np.subtract(h_prev, n[t], out=z_diff[t]),
         lambda: np.subtract(c["h"], c["n"], out=c["zd"])),
        ("zd *= z", lambda: np.multiply(z_diff[t], z, out=zd2),
         lambda: np.multiply(c["zd"], c["z"], out=c2)),
        ("h = n + zd", lambda: np.add(n[t], z_diff[t], out=h),
         lambda: np.add(c["n"], c["zd"], out=c["h"])),
    ]
    bwd = [
        ("gz = g ⊙ z", lambda: np.multiply(g, z, out=dh_z),
         lambda: np.multiply(g, c["z"], out=dh_z)),
        ("g_omz = g − gz", lambda: np.subtract(g, dh_z, out=dh_omz),
         lambda: np.subtract(g, dh_z, out=dh_omz)),
        ("da_n = n ⊙ n", lambda: np.multiply(n[t], n[t], out=da_n),
         lambda: np.multiply(c["n"], c["n"], out=c["da_n"])),
        ("da_n = 1 − da_n", lambda: np.subtract(1, da_n, out=da_n2),
         lambda: np.subtract(1, c["da_n"], out=c2)),
        ("da_n *= g_omz", lambda: np.multiply(da_n, dh_omz, out=da_n2),
         lambda: np.multiply(c["da_n"], dh_omz, out=c2)),
        ("dhn = da_n ⊙ r", lambda: np.multiply(da_n, r, out=dhn),
         lambda: np.multiply(c["da_n"], c["r"], out=c["dhn"])),
        ("da_r = hn − r_hn", lambda: np.subtract(hn[t], r_hn[t], out=da_r),
         lambda: np.subtract(c["hn"], c["u"], out=c["da_r"])),
        ("da_r *= dhn", lambda: np.multiply(da_r, dhn, out=da_r2),
         lambda: np.multiply(c["da_r"], c["dhn"], out=c2)),
        ("da_z = zd ⊙ g_omz", lambda: np.multiply(z_diff[t], dh_omz, out=da_z),
         lambda: np.multiply(c["zd"], dh_omz, out=c["da_z"])),
        ("carry += gz", lambda: np.add(carry, dh_z, out=c2),
         lambda: np.add(carry, dh_z, out=c2)),
    ]
    ops = {name: [[what, best_us(f), best_us(f_c)] for what, f, f_c in rows]
           for name, rows in (("forward", fwd), ("backward", bwd))}

    # ---- the step products -----------------------------------------------------------------
    W3T, W3 = rand(3, H, H), rand(3, H, H)
    gh3, dgh3, tmp3 = rand(3, B, H), rand(3, B, H), rand(3, B, H)

    def bwd_product_3():
        np.matmul(dgh3, W3, out=tmp3)
        np.add(tmp3[0], tmp3[1], out=carry)
        carry.__iadd__(tmp3[2])

    products = [
        ["forward: one (B, H)×(H, 3H)", best_us(lambda: np.matmul(h_prev, W_hhT, out=gh)),
         "three (B, H)×(H, H)", best_us(lambda: np.matmul(h_prev, W3T, out=gh3))],
        ["backward: one (B, 3H)×(3H, H)",
         best_us(lambda: np.matmul(G[t, :, H:], W_hh, out=carry)),
         "three (B, H)×(H, H) and two additions", best_us(bwd_product_3)],
    ]

    # ---- whole loop bodies -----------------------------------------------------------------
    def step_forward_now():  # _direction_forward's body (no fused kernel), gates side by side
        np.matmul(h_prev, W_hhT, out=gh)
        aa = np.add(gi[t, :, :2 * H], gh[:, :2 * H], out=rz[t])
        np.tanh(aa, out=aa)
        aa *= 0.5
        aa += 0.5
        hn_t = np.add(gh[:, 2 * H:], b_hn, out=hn[t])
        u = np.multiply(aa[:, :H], hn_t, out=r_hn[t])
        n_t = np.add(gi[t, :, 2 * H:], u, out=n[t])
        np.tanh(n_t, out=n_t)
        zd = np.subtract(h_prev, n_t, out=z_diff[t])
        zd *= aa[:, H:]
        np.add(n_t, zd, out=h)

    gi_g = rand(3, T, B, H)  # gate-major: gi_g[k, t] is gate k's (B, H) block at step t
    rz_g, n_g, hn_g, rhn_g, zd_g = rand(2, T, B, H), *(rand(T, B, H) for _ in range(4))

    def step_forward_gate_major():
        np.matmul(h_prev, W3T, out=gh3)
        aa = np.add(gi_g[:2, t], gh3[:2], out=rz_g[:, t])
        np.tanh(aa, out=aa)
        aa *= 0.5
        aa += 0.5
        hn_t = np.add(gh3[2], b_hn, out=hn_g[t])
        u = np.multiply(aa[0], hn_t, out=rhn_g[t])
        n_t = np.add(gi_g[2, t], u, out=n_g[t])
        np.tanh(n_t, out=n_t)
        zd = np.subtract(h_prev, n_t, out=zd_g[t])
        zd *= aa[1]
        np.add(n_t, zd, out=h)

    def step_backward_now():  # _direction_backward's body (no fused kernel)
        gz = np.multiply(g, z, out=dh_z)
        g_omz = np.subtract(g, gz, out=dh_omz)
        np.multiply(n[t], n[t], out=da_n)
        np.subtract(1, da_n, out=da_n)
        da_n.__imul__(g_omz)
        np.multiply(da_n, r, out=dhn)
        np.subtract(hn[t], r_hn[t], out=da_r)
        da_r.__imul__(dhn)
        np.multiply(z_diff[t], g_omz, out=da_z)
        np.matmul(G[t, :, H:], W_hh, out=carry)
        carry.__iadd__(gz)

    G_g = rand(4, T, B, H)  # gate-major [da_n, da_r, da_z, dhn]

    def step_backward_gate_major():
        dn, dr, dz, dh_n = G_g[0, t], G_g[1, t], G_g[2, t], G_g[3, t]
        gz = np.multiply(g, rz_g[1, t], out=dh_z)
        g_omz = np.subtract(g, gz, out=dh_omz)
        np.multiply(n_g[t], n_g[t], out=dn)
        np.subtract(1, dn, out=dn)
        dn *= g_omz
        np.multiply(dn, rz_g[0, t], out=dh_n)
        np.subtract(hn_g[t], rhn_g[t], out=dr)
        dr *= dh_n
        np.multiply(zd_g[t], g_omz, out=dz)
        np.matmul(G_g[1:, t], W3, out=tmp3)
        np.add(tmp3[0], tmp3[1], out=carry)
        carry.__iadd__(tmp3[2])
        carry.__iadd__(gz)

    steps = [["forward", best_us(step_forward_now), best_us(step_forward_gate_major)],
             ["backward", best_us(step_backward_now), best_us(step_backward_gate_major)]]
    return dict(ops=ops, products=products, steps=steps)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128, help="B (default 128)")
    ap.add_argument("--hidden", type=int, default=256, help="H (default 256)")
    ap.add_argument("--threads", type=int, default=1, help="OpenBLAS threads (default 1)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before NumPy's first import
    res = measure(args.batch, args.hidden)
    print(f"B = {args.batch}, H = {args.hidden}, {args.threads} BLAS thread(s); µs per call")
    for name, rows in res["ops"].items():
        print(f"\n{name} step, op by op:  gates side by side | contiguous | ratio")
        for what, now, contig in rows:
            print(f"  {what:20s} {now:7.1f} {contig:7.1f}   {now / contig:4.1f}x")
        print(f"  {'sum':20s} {sum(r[1] for r in rows):7.1f} {sum(r[2] for r in rows):7.1f}")
    print("\nstep products:")
    for what, t1, what3, t3 in res["products"]:
        print(f"  {what}: {t1:.1f}   {what3}: {t3:.1f}")
    print("\nwhole loop bodies (product included):  gates side by side | gate-major")
    for name, now, gm in res["steps"]:
        print(f"  {name:9s} {now:7.1f} {gm:7.1f}   ({gm / now - 1:+.0%})")
    if args.json:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from _common import write_json

        write_json(args.json, args=vars(args), **res)


if __name__ == "__main__":
    main()
