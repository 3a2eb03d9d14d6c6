//! Realistic workflow files: which lines read the key's secrets, and the snippet that replaces
//! them parses as the YAML it shows.

use serde_json::{Value, json};

use super::*;

const KEY: &[&str] = &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];

/// The (line, secret) pairs a finding reports.
fn uses(finding: &Finding) -> Vec<(usize, &str)> {
    finding
        .uses
        .iter()
        .map(|u| (u.line, u.secret.as_str()))
        .collect()
}

const DEPLOY: &str = r#"name: Deploy site

on:
  push:
    branches: [main]
  workflow_dispatch:

env:
  AWS_ACCESS_KEY_ID: ${{ secrets.AWS_ACCESS_KEY_ID }}
  AWS_SECRET_ACCESS_KEY: ${{secrets.AWS_SECRET_ACCESS_KEY}}
  AWS_DEFAULT_REGION: eu-west-1

jobs:
  sync:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: aws s3 sync ./site s3://example-site --delete

  deploy:
    needs: sync
    runs-on: ubuntu-latest
    environment: production
    steps:
      - uses: actions/checkout@v4
      - name: Configure AWS credentials
        uses: aws-actions/configure-aws-credentials@e6de054238d6b7531b4efff3b6587d9aade6a06c # v6.2.3
        with:
          aws-access-key-id: ${{ secrets.AWS_ACCESS_KEY_ID }}
          aws-secret-access-key: ${{ secrets['AWS_SECRET_ACCESS_KEY'] }}
          aws-region: eu-west-1
      # - run: echo "${{ secrets.AWS_SECRET_ACCESS_KEY }}" | base64
      - name: Invalidate the CDN
        env:
          SLACK_WEBHOOK: ${{ secrets.SLACK_WEBHOOK }}
        run: |
          # a shell comment, which Actions still interpolates: ${{ secrets.AWS_ACCESS_KEY_ID }}
          ./scripts/invalidate.sh --key "${{ secrets.AWS_ACCESS_KEY_ID }}"
          curl -sf -X POST "$SLACK_WEBHOOK" -d '{"text":"deployed"}'
    # - secrets: inherit
"#;

#[test]
fn a_deploy_workflow_reads_the_key_in_its_env_its_with_inputs_and_a_script() {
    let finding = scan(".github/workflows/deploy.yml", DEPLOY, KEY).expect("reads the key");
    assert_eq!(finding.path, ".github/workflows/deploy.yml");
    assert_eq!(
        uses(&finding),
        [
            (9, "AWS_ACCESS_KEY_ID"),
            (10, "AWS_SECRET_ACCESS_KEY"),
            (29, "AWS_ACCESS_KEY_ID"),
            (30, "AWS_SECRET_ACCESS_KEY"),
            (37, "AWS_ACCESS_KEY_ID"),
            (38, "AWS_ACCESS_KEY_ID"),
        ]
    );
    assert_eq!(
        finding.uses[3].text,
        "aws-secret-access-key: ${{ secrets['AWS_SECRET_ACCESS_KEY'] }}"
    );
    assert_eq!(
        finding.uses[5].text,
        r#"./scripts/invalidate.sh --key "${{ secrets.AWS_ACCESS_KEY_ID }}""#
    );
}

const RELEASE: &str = r#"name: Release

on:
  release:
    types: [published]

jobs:
  build:
    uses: ./.github/workflows/build.yml
    with:
      target: release

  publish:
    needs: build
    uses: acme/shared-workflows/.github/workflows/publish.yml@v2
    with:
      bucket: acme-releases
    secrets:
      access-key-id: ${{ secrets.AWS_ACCESS_KEY_ID }}
      secret-access-key: ${{ secrets.AWS_SECRET_ACCESS_KEY }}
      npm-token: ${{ secrets.NPM_TOKEN }}
"#;

#[test]
fn a_reusable_workflow_caller_passes_the_key_through_its_secrets_mapping() {
    let finding = scan(".github/workflows/release.yml", RELEASE, KEY).expect("reads the key");
    assert_eq!(
        uses(&finding),
        [(19, "AWS_ACCESS_KEY_ID"), (20, "AWS_SECRET_ACCESS_KEY")]
    );
    assert_eq!(
        finding.uses[0].text,
        "access-key-id: ${{ secrets.AWS_ACCESS_KEY_ID }}"
    );
}

const INFRA: &str = r#"name: Infrastructure

on:
  pull_request:
  push:
    branches: [main]

jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: make lint

  terraform:
    needs: lint
    uses: acme/infra/.github/workflows/terraform.yml@main
    with:
      workspace: production
    secrets: inherit   # the called workflow reads AWS_ACCESS_KEY_ID itself

  local:
    uses: ./.github/workflows/smoke.yml
    secrets: 'inherit'
"#;

#[test]
fn secrets_inherit_passes_every_secret_to_the_called_workflow() {
    let finding = scan(".github/workflows/infra.yml", INFRA, KEY).expect("passes the key");
    assert_eq!(uses(&finding), [(20, INHERIT), (24, INHERIT)]);
    assert_eq!(
        finding.uses[0].text,
        "secrets: inherit   # the called workflow reads AWS_ACCESS_KEY_ID itself"
    );
}

const OTHERS: &str = r#"name: CI

on: [push, pull_request]

env:
  # AWS_ACCESS_KEY_ID: ${{ secrets.AWS_ACCESS_KEY_ID }}
  REGISTRY_TOKEN: ${{ secrets.REGISTRY_TOKEN }}

jobs:
  test:
    name: Test (no secrets.AWS_ACCESS_KEY_ID here)
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: cargo test
        env:
          OLD_KEY: ${{ secrets.AWS_ACCESS_KEY_ID_OLD }}
          TOKEN: ${{ github.token || secrets.GITHUB_TOKEN }}
          LABEL: ${{ format('secrets.{0}', 'AWS_ACCESS_KEY_ID') }}
          QUOTED: ${{ 'it''s secrets' }}
      - run: echo "secrets.AWS_SECRET_ACCESS_KEY is not read outside an expression"
"#;

#[test]
fn a_workflow_reading_only_other_secrets_is_not_reported() {
    assert_eq!(scan(".github/workflows/ci.yml", OTHERS, KEY), None);
    assert_eq!(scan(".github/workflows/deploy.yml", DEPLOY, &[]), None);
}

const PLAN: &str = r#"name: Plan
on:
  pull_request:
    paths: ["terraform/**"]
jobs:
  plan:
    runs-on: ubuntu-latest
    env:
      AWS_ACCESS_KEY_ID: ${{ secrets.aws_access_key_id }}
      AWS_SECRET_ACCESS_KEY: ${{   Secrets [ "AWS_SECRET_ACCESS_KEY" ]   }}
    steps:
      - uses: actions/checkout@v4
      - run: terraform plan -var "key=${{ secrets.NEW_KEY || secrets.AWS_ACCESS_KEY_ID }}" -var "secret=${{ SECRETS.Aws_Secret_Access_Key }}"
      - run: echo '${{ toJSON(secrets) }}' > /tmp/all.json
      - run: echo "${{ secrets[format('{0}_KEY', env.NAME)] }}"
"#;

#[test]
fn names_match_whatever_their_case_spacing_and_form() {
    let finding = scan(".github/workflows/plan.yml", PLAN, KEY).expect("reads the key");
    assert_eq!(
        uses(&finding),
        [
            (9, "AWS_ACCESS_KEY_ID"),
            (10, "AWS_SECRET_ACCESS_KEY"),
            (13, "AWS_ACCESS_KEY_ID"),
            (13, "AWS_SECRET_ACCESS_KEY"),
            (14, ANY),
            (15, ANY),
        ]
    );
}

const CUSTOM: &str = r#"name: Publish
on:
  workflow_dispatch:
    inputs:
      channel:
        required: true
jobs:
  upload:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: Upload
        run: |
          export AWS_ACCESS_KEY_ID=${{ secrets.DEPLOY_KEY_ID }}
          export AWS_SECRET_ACCESS_KEY=${{ secrets.DEPLOY_KEY_SECRET }}
          aws s3 cp dist/ "s3://downloads/${{ inputs.channel }}/" --recursive
      - run: ./notify.sh
        env:
          AWS_ACCESS_KEY_ID: ${{ secrets.AWS_ACCESS_KEY_ID }}
          ID: ${{ secrets.DEPLOY_KEY_ID }} ${{ secrets.deploy_key_id }}
"#;

#[test]
fn custom_secret_names_are_found_and_reported_as_given() {
    let names = ["DEPLOY_KEY_ID", "DEPLOY_KEY_SECRET"];
    let finding = scan("a.yml", CUSTOM, &names).expect("reads the key");
    assert_eq!(
        uses(&finding),
        [
            (14, "DEPLOY_KEY_ID"),
            (15, "DEPLOY_KEY_SECRET"),
            (20, "DEPLOY_KEY_ID"),
        ]
    );
    assert_eq!(
        serde_json::to_value(&finding.uses[0]).unwrap(),
        json!({
            "line": 14,
            "secret": "DEPLOY_KEY_ID",
            "text": "export AWS_ACCESS_KEY_ID=${{ secrets.DEPLOY_KEY_ID }}",
        })
    );
}

#[test]
fn the_snippet_assumes_the_role_with_an_oidc_token() {
    let text = snippet("AWS_ROLE_ARN", "us-east-1", KEY);
    assert!(text.starts_with('#'), "{text}");
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"),
        "{text}"
    );
    assert!(
        text.contains("role-to-assume: ${{ vars.AWS_ROLE_ARN }}"),
        "{text}"
    );
    assert!(text.contains("id-token: write"), "{text}");
    assert!(
        text.contains(
            "aws-actions/configure-aws-credentials@e6de054238d6b7531b4efff3b6587d9aade6a06c"
        ),
        "{text}"
    );

    let yaml: Value = serde_saphyr::from_str(&text).expect("valid YAML");
    assert_eq!(
        yaml,
        json!({
            "permissions": { "id-token": "write", "contents": "read" },
            "steps": [{
                "uses": "aws-actions/configure-aws-credentials@e6de054238d6b7531b4efff3b6587d9aade6a06c",
                "with": {
                    "role-to-assume": "${{ vars.AWS_ROLE_ARN }}",
                    "aws-region": "us-east-1",
                },
            }],
        })
    );
    // What it names is what the scanner finds it replaces: none of the key's secrets.
    assert_eq!(scan("snippet.yml", &text, KEY), None);
}
