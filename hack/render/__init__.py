"""Render InferenceService / GPUPool / TokenCache manifests offline with the real Crossplane CLI.

`python -m hack.render` (`make render`): for every input document, pick the Composition and XRD
of its kind, turn a claim into the composite Crossplane would create for it (``--form claims``)
or use it as the XR as it is (``--form v2``), and run ``crossplane composition render``
(crossplane/cli >= v2.3) against the three functions, which it serves itself on 127.0.0.1 in
Development runtime mode. Rendering happens in a local Crossplane core binary
(``--crossplane-binary``), so neither Docker nor a cluster is needed.
`python -m hack.render --serve` (`make run`) only serves the functions until Ctrl-C.

Exit status: 0 all inputs rendered; 1 at least one render failed (the CLI's message, e.g. a
function's Fatal result, is printed); 2 usage, input or environment error.

Modules: ``options`` (command line), ``env`` (repository, tools, errors), ``yamlio``,
``catalog`` (XRDs and Compositions of a form), ``claims`` (claim -> composite), ``jobs`` (input
documents), ``functions`` (serving the function processes), ``validate`` (``crossplane resource
validate``), ``engine`` (``crossplane composition render``), ``output`` (what is printed).
"""
