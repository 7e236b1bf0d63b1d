{
  description = "dockgate: secure remote access to a Docker host, from one static binary";

  # The first `nix build` writes flake.lock, which pins this revision.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      commit = self.rev or self.dirtyRev or "unknown";
      version = "git-" + (self.shortRev or self.dirtyShortRev or "unknown");

      # The state directory, as in the Dockerfile.
      stateDir = "/var/lib/dockgate";
      # Not root; the Dockerfile's UID, so a volume moves between the images.
      uid = "65532";
    in
    {
      packages = forAllSystems (pkgs: rec {
        # go.mod asks for Go 1.26.
        dockgate = pkgs.buildGo126Module {
          pname = "dockgate";
          inherit version;
          src = self;

          # The NAR hash of `go mod vendor` for this go.mod and go.sum.
          # After a dependency change, write the new one with
          # `scripts/nix-check --update` (or take it from the "got:" line of
          # a failing `nix build`); scripts/test checks it.
          vendorHash = "sha256-epSIlQi+Et0fLOeP+CQpTQR/qavUDVk6/sNgm9CPB/Q=";

          subPackages = [ "cmd/dockgate" ];
          # As the Makefile's release build: static, no symbol tables, no
          # build ID, version and commit stamped. buildGoModule adds -trimpath.
          env.CGO_ENABLED = "0";
          ldflags = [
            "-s"
            "-w"
            "-buildid="
            "-X github.com/dockgate/dockgate/internal/version.Version=${version}"
            "-X github.com/dockgate/dockgate/internal/version.Commit=${commit}"
          ];
          # The tests start a private dockerd as root, which the build
          # sandbox cannot; scripts/test runs them.
          doCheck = false;

          meta = {
            description = "Secure remote access to a Docker host: a CA and a mutual-TLS gateway";
            mainProgram = "dockgate";
            platforms = pkgs.lib.platforms.linux;
          };
        };

        # The image, reproducibly: the binary, Nix's CA bundle and nothing
        # else. Go does not look in the Nix store for roots, so SSL_CERT_FILE
        # names the bundle.
        image = pkgs.dockerTools.buildLayeredImage {
          name = "dockgate";
          tag = version;
          contents = [ pkgs.cacert ];
          # A scratch-like image cannot create directories at run time:
          # /tmp for `doctor image`, the state volume for the runtime user.
          fakeRootCommands = ''
            mkdir -p tmp .${stateDir}
            chmod 1777 tmp
            chown ${uid}:${uid} .${stateDir}
            chmod 0700 .${stateDir}
          '';
          config = {
            Entrypoint = [ "${dockgate}/bin/dockgate" ];
            Cmd = [ "serve" ];
            User = "${uid}:${uid}";
            Env = [
              "SSL_CERT_FILE=${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt"
              "DOCKGATE_HOME=${stateDir}"
            ];
            Volumes = { ${stateDir} = { }; };
            ExposedPorts = { "2376/tcp" = { }; };
            # The Dockerfile's HEALTHCHECK; durations in nanoseconds.
            Healthcheck = {
              Test = [ "CMD" "${dockgate}/bin/dockgate" "healthcheck" ];
              Interval = 30000000000;
              Timeout = 10000000000;
              StartPeriod = 10000000000;
              Retries = 3;
            };
          };
        };

        default = dockgate;
      });
    };
}
