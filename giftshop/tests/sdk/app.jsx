// Test-only: the publisher's page around Cleeng's front end (@cleeng/mediastore-sdk), as its README shows it.
// giftshop/tests/test_cleeng_sdk.py serves this page at http://sdk.test/ and mounts one SDK component per URL:
//   ?component=Register|Login|PasswordReset|Purchase|MyAccount|PlanDetails|TransactionList|PaymentInfo|
//              UpdateProfile|RedeemGift&publisherId=…&offerId=…&jwt=…&refreshToken=…
// The "development" environment makes the SDK call its API on the page's own origin (its base URL is "" there;
// "sandbox" and "production" are Cleeng's hosts), and the test's page forwards those calls to /mediastore/.
import React from 'react';
import { createRoot } from 'react-dom/client';
import { Provider } from 'react-redux';
import {
  Config,
  MyAccount,
  Login,
  PasswordReset,
  PaymentInfo,
  PlanDetails,
  Purchase,
  RedeemGift,
  Register,
  TransactionList,
  UpdateProfile,
  store
} from '@cleeng/mediastore-sdk';
import 'react-loading-skeleton/dist/skeleton.css';
import '@adyen/adyen-web/dist/adyen.css';

const params = new URLSearchParams(window.location.search);
const name = params.get('component') || 'Login';

Config.setEnvironment('development');
Config.setPublisher(params.get('publisherId'));
if (params.get('jwt')) Config.setJWT(params.get('jwt'));
if (params.get('refreshToken')) Config.setRefreshToken(params.get('refreshToken'));
Config.setMyAccountUrl(`${window.location.origin}/?component=MyAccount`);
Config.setTermsUrl(`${window.location.origin}/terms`);

// What happened, for the test to read: each callback and MSSDK:* event is written into #outcome.
const outcome = document.getElementById('outcome');
const record = (text) => {
  const line = document.createElement('li');
  line.textContent = text;
  outcome.appendChild(line);
};
const done = (what) => () => record(`${name}: ${what}`);
[
  'MSSDK:purchase-successful',
  'MSSDK:purchase-failed',
  'MSSDK:auth-failed',
  'MSSDK:redeem-gift-success',
  'MSSDK:redeem-gift-failed',
  'MSSDK:edit-delivery-details-success',
  'MSSDK:edit-delivery-details-failed'
].forEach((event) => window.addEventListener(event, () => record(event)));

const components = {
  Register: () => <Register onSuccess={done('registered')} onHaveAccountClick={done('have an account')} />,
  Login: () => (
    <Login
      onSuccess={done('logged in')}
      onRegisterClick={done('register')}
      onPasswordResetClick={done('password reset')}
    />
  ),
  PasswordReset: () => <PasswordReset onSuccess={done('reset requested')} />,
  Purchase: () => (
    <Purchase
      offerId={params.get('offerId')}
      couponCode={params.get('couponCode')}
      onSuccess={done('purchased')}
    />
  ),
  MyAccount: () => <MyAccount />,
  PlanDetails: () => <PlanDetails />,
  TransactionList: () => <TransactionList />,
  PaymentInfo: () => <PaymentInfo />,
  UpdateProfile: () => <UpdateProfile />,
  RedeemGift: () => <RedeemGift onSuccess={done('redeemed')} onBackClick={done('back')} />
};
const Component = components[name];

createRoot(document.getElementById('root')).render(
  <Provider store={store}>
    <Component />
  </Provider>
);
