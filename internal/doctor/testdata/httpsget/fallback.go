//go:build fallback

package main

import _ "golang.org/x/crypto/x509roots/fallback"
